"""Signed in by the platform, never by a password: a patient inside WeChat opens the
Official Account's menu and books; staff inside DingTalk or WeCom open a task's detail (免登).

The platform's part is simulated from WeChat's 网页授权 documentation
(https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html,
`tests/simulators/platforms.py` `oa_authorize`): the menu button opens our
`/bots/wechat-oa/oauth?next=…`, which sends the browser to WeChat's authorize URL; WeChat
(the simulator, a real HTTP server) checks the appid, the state (a-zA-Z0-9, ≤128 bytes) and
that redirect_uri is on the 网页授权域名, and sends the browser back with `code` and
`state`. From there everything is the real server and the built PWA.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from api.auth import Actor
from api.demo import seed_demo
from api.domain.patient_binding import unbind_patient_openid
from api.models.patients import Patient
from api.models.people import User
from api.services import Services
from tests.browser.conftest import PHONE, _free_port, running_server, server_env
from tests.browser.scenes import submit_grade4_application
from tests.conftest import truncate_all
from tests.simulators.platforms import (  # noqa: F401
    CALLBACK_TOKEN,
    DINGTALK,
    OA,
    OA_AES_KEY,
    WECOM,
    WECOM_AES_KEY,
    platform_sim,
    platform_sim_server,
)

pytestmark = pytest.mark.browser

WECHAT_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49(0x18003137) NetType/WIFI Language/zh_CN"
)
SHOTS = Path("/tmp/bedside-oa-screens")
SHOTS.mkdir(exist_ok=True)


@pytest.fixture(scope="module")
def oa_server(browser_prerequisites, settings, database, platform_sim_server) -> Iterator[str]:  # noqa: F811
    """The real server, its Official Account pointed at the simulator, its public URL its own."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = server_env(settings)
    env.pop("BEDSIDE_REDIS_URL", None)
    env.update(
        {
            "BEDSIDE_PUBLIC_URL": base,
            "BEDSIDE_WECHAT_OA_APP_ID": OA["app_id"],
            "BEDSIDE_WECHAT_OA_SECRET": OA["secret"],
            "BEDSIDE_WECHAT_OA_TOKEN": CALLBACK_TOKEN,
            "BEDSIDE_WECHAT_OA_AES_KEY": OA_AES_KEY,
            "BEDSIDE_WECHAT_OA_API_BASE": platform_sim_server.url,
            "BEDSIDE_WECHAT_OA_OAUTH_BASE": platform_sim_server.url,
            "BEDSIDE_DINGTALK_APP_KEY": DINGTALK["app_key"],
            "BEDSIDE_DINGTALK_APP_SECRET": DINGTALK["app_secret"],
            "BEDSIDE_DINGTALK_AGENT_ID": DINGTALK["agent_id"],
            "BEDSIDE_DINGTALK_CORP_ID": DINGTALK["corp_id"],
            "BEDSIDE_DINGTALK_API_BASE": platform_sim_server.url,
            "BEDSIDE_WECOM_CORP_ID": WECOM["corp_id"],
            "BEDSIDE_WECOM_SECRET": WECOM["secret"],
            "BEDSIDE_WECOM_AGENT_ID": WECOM["agent_id"],
            "BEDSIDE_WECOM_TOKEN": CALLBACK_TOKEN,
            "BEDSIDE_WECOM_AES_KEY": WECOM_AES_KEY,
            "BEDSIDE_WECOM_API_BASE": platform_sim_server.url,
            "BEDSIDE_WECOM_OAUTH_BASE": platform_sim_server.url,
        }
    )
    with running_server(env, port) as url:
        yield url


@pytest.fixture
async def oa_hospital(oa_server: str, settings, database) -> Services:
    for attempt in range(5):
        try:
            await truncate_all(database)
            break
        except Exception as exc:  # noqa: BLE001 - a straggler's deadlock: try again
            if "deadlock" not in str(exc).lower() or attempt == 4:
                raise
            await asyncio.sleep(0.5)
    services = Services.build(settings, db=database)
    async with database.transaction() as session:
        await seed_demo(session, services)
    return services


@pytest.fixture
async def wechat_page(browser, oa_server: str) -> Any:
    context = await browser.new_context(
        base_url=oa_server,
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        user_agent=WECHAT_UA,
    )
    context.set_default_timeout(15_000)
    page = await context.new_page()
    yield page
    await context.close()


def menu_entry(oa_server: str, title: str) -> str:
    """The URL of the menu's view button, as `bedside bots oa-menu` publishes it."""
    from api.settings import Settings
    from bots.wechat_oa import menu

    services = Services.build(Settings(public_url=oa_server))
    return next(b["url"] for b in menu(services) if b["name"] == title)


async def book_first_free_slot(page: Any) -> str:
    await page.get_by_role("button", name="预约").first.click()
    await page.wait_for_selector("[data-testid=slots]")
    slot = page.locator("[data-testid^=slot-]:not([disabled])").first
    await slot.tap()
    await page.get_by_role("button", name="确认预约").click()  # day, time, room, item checked
    await page.wait_for_selector("[data-testid=appointment-status]:has-text('已预约')")
    return (await page.inner_text("[data-testid=receipt-no]")).strip()


async def test_bound_patient_opens_the_menu_and_books_signed_in(
    oa_hospital, oa_server, wechat_page, platform_sim
) -> None:
    platform_sim.state.oa_oauth_domain = "127.0.0.1"
    platform_sim.state.oa_wechat_user = "demo-openid-zhou"  # patient.zhou's openid
    page = wechat_page
    await page.goto(menu_entry(oa_server, "预约治疗"))
    await page.wait_for_selector("[data-testid=orders]")
    assert "#token" not in page.url and page.url.endswith(
        "/orders"
    )  # no credential left in the URL
    await page.wait_for_selector("[data-testid^=order-]")
    await page.screenshot(path=str(SHOTS / "oa-landing.png"))
    assert await book_first_free_slot(page)
    await page.screenshot(path=str(SHOTS / "oa-booked.png"))
    # the state WeChat got was short and alphanumeric (the simulator refuses others)
    code_calls = [c for c in platform_sim.state.calls if c["path"] == "/sns/oauth2/access_token"]
    assert len(code_calls) == 1

    # 我的预约 from the menu, already signed in: straight to the patient's page
    await page.goto(menu_entry(oa_server, "我的预约"))
    await page.wait_for_selector("[data-testid^=appointment-]")


async def test_unbound_patient_binds_once_then_books(
    oa_hospital, oa_server, wechat_page, platform_sim, browser
) -> None:
    # 周建国 changed phones (a new WeChat account): the desk checked his ID card and ended
    # the old binding, as it must before an archive is bound again (ALREADY_BOUND else).
    async with oa_hospital.db.transaction() as session:
        desk = Actor.from_user(
            (await session.execute(sa.select(User).where(User.username == "ma.zhao"))).scalar_one()
        )
        zhou = (
            await session.execute(sa.select(Patient).where(Patient.mrn == "P0001"))
        ).scalar_one()
        assert (
            await unbind_patient_openid(session, zhou, actor=desk, reason="更换微信，已核验身份证")
            == 1
        )
    platform_sim.state.oa_oauth_domain = "127.0.0.1"
    platform_sim.state.oa_wechat_user = "openid-zhou-new-phone"
    page = wechat_page
    await page.goto(menu_entry(oa_server, "预约治疗"))
    await page.wait_for_selector("[data-testid=patient-bind]")
    assert "#ticket" not in page.url
    await page.screenshot(path=str(SHOTS / "oa-bind.png"))
    await page.get_by_label("姓名").fill("周建国")
    await page.get_by_label("身份证号").fill("340202196203141234")
    await page.get_by_label("手机号").fill("13900000000")  # not the phone on record
    await page.get_by_role("button", name="绑定并进入").click()
    await page.wait_for_selector("[data-testid=bind-error]")
    await page.screenshot(path=str(SHOTS / "oa-bind-error.png"))
    await page.get_by_label("手机号").fill("13805531234")
    await page.get_by_role("button", name="绑定并进入").click()
    await page.wait_for_selector("[data-testid=orders]")
    assert await book_first_free_slot(page)

    # a later visit on a fresh browser profile: no form, signed in by the redirect alone
    context = await browser.new_context(
        base_url=oa_server, viewport=PHONE, is_mobile=True, locale="zh-CN", user_agent=WECHAT_UA
    )
    try:
        later = await context.new_page()
        await later.goto(menu_entry(oa_server, "预约治疗"))
        await later.wait_for_selector("[data-testid=orders]", timeout=15_000)
    finally:
        await context.close()


async def test_a_patient_page_without_a_session_goes_through_the_account_sign_in(
    oa_hospital, oa_server, wechat_page, platform_sim
) -> None:
    """Opening a patient page inside WeChat with no session (a bookmarked link, an expired
    sign-in) goes through the account's OAuth again, never to a password screen."""
    platform_sim.state.oa_oauth_domain = "127.0.0.1"
    platform_sim.state.oa_wechat_user = "demo-openid-zhou"
    page = wechat_page
    await page.goto("/patient/follow-ups")
    await page.wait_for_url("**/follow-up**")
    assert "/login" not in page.url


DINGTALK_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 AliApp(DingTalk/7.6.10) com.laiwang.DingTalk/36712345 Channel/201200 language/zh-Hans-CN"
)
WECOM_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Mobile/15E148 wxwork/4.1.22 MicroMessenger/7.0.1 Language/zh ColorScheme/Light"
)

# DingTalk's JSAPI as documented (runtime.permission.requestAuthCode, https://open.dingtalk.com/document/orgapp/jsapi-request-auth-code):
# `{corpId, onSuccess({code}), onFail(err)}`, the code valid 5 minutes and once. The
# container's native bridge cannot run outside DingTalk, so the page gets the global `dd`
# that DingTalk's own script defines, answering with a code the simulator issued.
DD_JSAPI = """
window.dd = { runtime: { permission: { requestAuthCode(o) {
  if (o.corpId !== %(corp)r) { o.onFail({ errorMessage: 'corpId mismatch' }); return }
  o.onSuccess({ code: %(code)r })
} } } }
"""


async def staff_page(browser: Any, base: str, user_agent: str) -> Any:
    context = await browser.new_context(
        base_url=base,
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        user_agent=user_agent,
    )
    context.set_default_timeout(15_000)
    return context


async def test_dingtalk_opens_the_task_detail_signed_in(
    oa_hospital, oa_server, platform_sim, browser
) -> None:
    instance = await submit_grade4_application(oa_server)
    task = next(t for t in instance["tasks"] if t["assignee"]["username"] == "chief.wang")
    code = platform_sim.auth_code("dingtalk", "chief.wang")
    context = await staff_page(browser, oa_server, DINGTALK_UA)
    try:
        await context.add_init_script(DD_JSAPI % {"corp": DINGTALK["corp_id"], "code": code})
        page = await context.new_page()
        await page.goto(f"/tasks/{task['id']}")  # the card's 详情, opened inside DingTalk
        await page.wait_for_selector("[data-testid=task-detail]")
        await page.wait_for_selector("[data-testid=approve]")
        assert "/login" not in page.url
        await page.screenshot(path=str(SHOTS / "dingtalk-task.png"))
    finally:
        await context.close()
    # the code was exchanged once, server side
    exchanges = [c for c in platform_sim.state.calls if c["path"] == "/topapi/v2/user/getuserinfo"]
    assert len(exchanges) == 1


async def test_wecom_opens_the_task_detail_signed_in(
    oa_hospital, oa_server, platform_sim, browser
) -> None:
    platform_sim.state.wecom_trusted_domain = "127.0.0.1"
    platform_sim.state.wecom_browser_user = "chief.wang"
    instance = await submit_grade4_application(oa_server)
    task = next(t for t in instance["tasks"] if t["assignee"]["username"] == "chief.wang")
    context = await staff_page(browser, oa_server, WECOM_UA)
    try:
        page = await context.new_page()
        await page.goto(f"/tasks/{task['id']}")
        await page.wait_for_selector("[data-testid=approve]")
        assert "/login" not in page.url and "#token" not in page.url
        assert page.url.endswith(f"/tasks/{task['id']}")
    finally:
        await context.close()


async def test_outside_the_platforms_the_sign_in_page_stays(
    oa_hospital, oa_server, browser
) -> None:
    context = await staff_page(browser, oa_server, "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0")
    try:
        page = await context.new_page()
        await page.goto("/tasks")
        await page.wait_for_url("**/login**")
    finally:
        await context.close()


async def test_an_unbound_dingtalk_user_binds_once_then_is_signed_in(
    oa_hospital, oa_server, platform_sim, browser
) -> None:
    """A DingTalk user Bedside does not know yet gets the one-time binding page, signs in
    once with the Bedside password, and from then on DingTalk signs them in."""
    context = await staff_page(browser, oa_server, DINGTALK_UA)
    code = platform_sim.auth_code("dingtalk", "dt-he-new-phone")
    try:
        await context.add_init_script(DD_JSAPI % {"corp": DINGTALK["corp_id"], "code": code})
        page = await context.new_page()
        await page.goto("/tasks")
        await page.wait_for_url("**/login**")  # the binding page asks who they are first
        assert "bind" in page.url
        await page.get_by_label("用户名").fill("chief.he")
        await page.get_by_label("密码").fill("bedside-demo")
        await page.get_by_role("button", name="登录").click()
        await page.wait_for_selector("[data-testid=bind-confirm]")
        await page.screenshot(path=str(SHOTS / "dingtalk-bind.png"))
        await page.tap("[data-testid=bind-confirm]")
        await page.wait_for_selector("[data-testid=bind-done]")
    finally:
        await context.close()

    later = await staff_page(browser, oa_server, DINGTALK_UA)
    code = platform_sim.auth_code("dingtalk", "dt-he-new-phone")
    try:
        await later.add_init_script(DD_JSAPI % {"corp": DINGTALK["corp_id"], "code": code})
        page = await later.new_page()
        await page.goto("/tasks")
        await page.wait_for_url("**/tasks")
        assert "/login" not in page.url
    finally:
        await later.close()
