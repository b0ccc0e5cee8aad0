"""The Official Account's web OAuth state, as WeChat's 网页授权 documentation requires:
"重定向后会带上state参数，开发者可以填写a-zA-Z0-9的参数值，最多128字节"
(https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import httpx
import sqlalchemy as sa

from api.models.bots import BotOAuthState
from api.services import Services


async def start(bot_http: httpx.AsyncClient, next_page: str = "/patient/book") -> str:
    answer = await bot_http.get("/bots/wechat-oa/oauth", params={"next": next_page})
    assert answer.status_code == 302
    return answer.headers["location"]


async def state_rows(services: Services) -> int:
    async with services.db.session() as session:
        return (
            await session.execute(sa.select(sa.func.count()).select_from(BotOAuthState))
        ).scalar_one()


async def test_state_is_short_alphanumeric_and_wechat_accepts_it(
    bots: Services, bot_http, platform_sim
):
    platform_sim.state.oa_oauth_domain = urlparse(bots.settings.public_url).hostname
    platform_sim.state.oa_wechat_user = "demo-openid-zhou"
    authorize = await start(bot_http, "/patient/book?from=menu&x=" + "y" * 300)
    state = parse_qs(urlparse(authorize).query)["state"][0]
    assert state.isalnum() and state.isascii() and len(state.encode()) <= 128
    # WeChat's authorize (the simulator, over real HTTP) accepts it and sends the user back
    async with httpx.AsyncClient() as wechat:
        back = await wechat.get(authorize.split("#")[0])
    assert back.status_code == 302, back.text
    returned = urlparse(back.headers["location"])
    assert returned.path == "/bots/wechat-oa/oauth/callback"
    landing = await bot_http.get(returned.path + "?" + returned.query)
    assert landing.status_code == 302
    assert landing.headers["location"].startswith("/patient/book?from=menu&x=yyy")
    assert "#token=" in landing.headers["location"]


async def test_state_is_used_once_and_an_unknown_one_is_refused(
    bots: Services, bot_http, platform_sim
):
    authorize = await start(bot_http)
    state = parse_qs(urlparse(authorize).query)["state"][0]
    assert await state_rows(bots) == 1
    first = await bot_http.get(
        "/bots/wechat-oa/oauth/callback",
        params={"code": platform_sim.auth_code("wechat_oa", "demo-openid-zhou"), "state": state},
    )
    assert first.status_code == 302
    again = await bot_http.get(
        "/bots/wechat-oa/oauth/callback",
        params={"code": platform_sim.auth_code("wechat_oa", "demo-openid-zhou"), "state": state},
    )
    assert again.status_code == 400
    for forged in ("0" * 32, "not-alnum!", "a" * 200, ""):
        refused = await bot_http.get(
            "/bots/wechat-oa/oauth/callback",
            params={
                "code": platform_sim.auth_code("wechat_oa", "demo-openid-zhou"),
                "state": forged,
            },
        )
        assert refused.status_code == 400
    # refused returns asked WeChat for nothing: one code exchange in all
    exchanges = [c for c in platform_sim.state.calls if c["path"] == "/sns/oauth2/access_token"]
    assert len(exchanges) == 1


async def test_the_simulated_authorize_refuses_what_wechat_refuses(platform_sim):
    """The old JWT state (about 195 bytes with dots) is what WeChat refused."""
    platform_sim.state.oa_oauth_domain = "bedside.hospital.example"
    platform_sim.state.oa_wechat_user = "x"
    async with httpx.AsyncClient() as wechat:
        base = {
            "appid": "wxsimapp00000001",
            "redirect_uri": "https://bedside.hospital.example/bots/wechat-oa/oauth/callback",
            "response_type": "code",
            "scope": "snsapi_base",
        }
        jwt_like = "eyJhbGciOiJIUzI1NiJ9." + "a" * 150 + ".sig"
        bad = await wechat.get(
            platform_sim.url + "/connect/oauth2/authorize", params={**base, "state": jwt_like}
        )
        assert bad.status_code == 400
        other_domain = await wechat.get(
            platform_sim.url + "/connect/oauth2/authorize",
            params={**base, "state": "abc", "redirect_uri": "https://evil.example/cb"},
        )
        assert other_domain.status_code == 400
