"""The app shell: login, the role-aware home, and opening again with the network off."""

from __future__ import annotations

import pytest

from tests.browser.conftest import PAD, PHONE, sign_in, wait_for_service_worker

pytestmark = pytest.mark.browser


async def test_login_shows_the_home_of_each_role_and_reopens_offline(hospital, new_context) -> None:
    context = await new_context(viewport=PHONE)
    page = await context.new_page()

    # A wrong password is refused in the user's language.
    await page.goto("/login")
    await page.get_by_label("用户名").fill("pt.sun")
    await page.get_by_label("密码").fill("wrong-password")
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_selector("[data-testid=login-error]")
    assert "用户名或密码错误" in await page.inner_text("[data-testid=login-error]")

    await sign_in(page, "pt.sun")
    assert "孙治疗师" in await page.inner_text("[data-testid=hello]")
    assert await page.is_visible("[data-testid=tile-worklist]")
    assert not await page.is_visible("[data-testid=tile-tasks]")
    await wait_for_service_worker(page)

    # Network off: the shell comes from the service worker, the session from IndexedDB.
    await context.set_offline(True)
    await page.reload()
    await page.wait_for_selector("[data-testid=hello]")
    assert "孙治疗师" in await page.inner_text("[data-testid=hello]")
    assert "离线" in await page.inner_text("[data-testid=offline-banner]")
    # A client-side route deep link opens offline too (navigation fallback to the shell).
    await page.goto("/notices")
    await page.wait_for_selector("main")
    await context.set_offline(False)


async def test_approver_and_patient_homes(hospital, new_context) -> None:
    context = await new_context(viewport=PAD)
    page = await context.new_page()
    await sign_in(page, "chief.wang")
    for tile in ("tasks", "rankings", "notices"):
        assert await page.is_visible(f"[data-testid=tile-{tile}]"), tile
    assert not await page.is_visible("[data-testid=tile-worklist]")

    phone = await (await new_context(viewport=PHONE)).new_page()
    await phone.goto("/login")
    await phone.get_by_label("用户名").fill("patient.zhou")
    await phone.get_by_label("密码").fill("bedside-demo")
    await phone.get_by_role("button", name="登录").click()
    await phone.wait_for_url("**/orders")
