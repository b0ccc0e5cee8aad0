"""Sign-in inside DingTalk and WeCom (免登) for the PWA.

- `GET /bots/signin-config`: what the PWA needs to ask the platform who is using it (no
  secret): DingTalk's CorpId for the JSAPI, whether WeCom sign-in is offered.
- DingTalk (H5 微应用): the PWA calls `dd.runtime.permission.requestAuthCode({corpId})`
  and posts the code to `/bots/dingtalk/login` (`bots/dingtalk.py`), which answers a token,
  or a one-time binding link for someone not yet bound.
  https://open.dingtalk.com/document/orgapp/jsapi-request-auth-code
- WeCom (网页授权, snsapi_base): `GET /bots/wecom/oauth?next=/tasks/5` sends the browser to
  `open.weixin.qq.com/connect/oauth2/authorize?appid=<CorpID>&…&agentid=<AgentId>
  #wechat_redirect` (https://developer.work.weixin.qq.com/document/path/91022); WeCom returns
  to `/bots/wecom/oauth/callback?code=&state=`; the code gives the member's userid
  (`/cgi-bin/auth/getuserinfo`, https://developer.work.weixin.qq.com/document/path/91023);
  a bound member goes to `next` with a token in the fragment, an unbound one to the
  binding link. The state is the same short, used-once record as the Official Account's.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from api.auth import issue_token
from api.models.people import User
from api.services import Services
from bots import identity
from bots.wechat_oa import new_oauth_state, take_oauth_state
from integrations.platforms import PlatformError, get_platforms

EXPIRED = "登录已失效，请重新打开 / the sign-in expired: open the page again"


async def config(request: Request) -> Response:
    services: Services = request.app.state.services
    platforms = get_platforms(services)
    return JSONResponse(
        {
            "dingtalkCorpId": services.settings.dingtalk_corp_id
            if platforms.dingtalk.configured
            else None,
            "wecom": bool(platforms.wecom.configured and services.settings.wecom_agent_id),
        }
    )


async def wecom_oauth(request: Request) -> Response:
    services: Services = request.app.state.services
    settings = services.settings
    if not get_platforms(services).wecom.configured:
        return PlainTextResponse("企业微信未配置 / WeCom is not configured", status_code=404)
    state = await new_oauth_state(services, request.query_params.get("next") or "/")
    query = urlencode(
        {
            "appid": settings.wecom_corp_id,
            "redirect_uri": f"{settings.public_url.rstrip('/')}/bots/wecom/oauth/callback",
            "response_type": "code",
            "scope": "snsapi_base",
            "state": state,
            "agentid": settings.wecom_agent_id,
        }
    )
    return RedirectResponse(
        f"{settings.wecom_oauth_base.rstrip('/')}/connect/oauth2/authorize?{query}#wechat_redirect",
        status_code=302,
    )


async def wecom_oauth_callback(request: Request) -> Response:
    services: Services = request.app.state.services
    code = request.query_params.get("code")
    next_path = await take_oauth_state(services, request.query_params.get("state", ""))
    if not code or next_path is None:
        return PlainTextResponse(EXPIRED, status_code=400)
    try:
        userid = await get_platforms(services).wecom.userid_for_auth_code(code)
    except PlatformError:
        return PlainTextResponse(EXPIRED, status_code=400)
    async with services.db.transaction() as session:
        actor = await identity.actor_for(session, "wecom", userid)
        if actor is None:
            link = await identity.create_binding_link(session, services, "wecom", userid)
            return RedirectResponse(link, status_code=302)
        user = await session.get(User, actor.user_id)
        assert user is not None
        token = issue_token(services.settings, user)
    return RedirectResponse(f"{next_path}#token={token}", status_code=302)
