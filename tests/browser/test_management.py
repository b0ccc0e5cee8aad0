"""The management screens on a PAD in Chinese, each as its user from the login screen:
the administrator unlocks an account, hands out a one-time password, edits roles and
imports departments (checked, then confirmed); medical affairs reads the access log of a
person and exports it; the administrator verifies the audit chains."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import sqlalchemy as sa

from api.models.audit import AccessLog
from api.models.people import Department, User
from tests.browser.conftest import SCREENSHOTS, sign_in
from tests.browser.scenes import graphql

PAD = {"width": 1180, "height": 820}


async def screenshot(page, name: str) -> None:
    """The screen once toasts are gone, with transitions finished."""
    if not SCREENSHOTS:
        return
    await page.locator(".van-toast").first.wait_for(state="hidden")
    target = Path(SCREENSHOTS)
    await asyncio.to_thread(target.mkdir, parents=True, exist_ok=True)
    await page.screenshot(path=str(target / f"{name}.png"), animations="disabled")


LOGIN = 'mutation($u: String!) { login(username: $u, password: "wrong-password") { token } }'


async def _user(hospital, username: str) -> User:
    async with hospital.db.session() as session:
        return (
            await session.execute(sa.select(User).where(User.username == username))
        ).scalar_one()


async def _departments(hospital) -> int:
    async with hospital.db.session() as session:
        return int(
            (await session.execute(sa.select(sa.func.count()).select_from(Department))).scalar_one()
        )


async def test_admin_unlocks_resets_and_edits_roles(hospital, live_server, new_context) -> None:
    # dr.li locked himself out on the ward.
    for _ in range(8):
        async with httpx.AsyncClient(base_url=live_server) as client:
            await client.post("/graphql", json={"query": LOGIN, "variables": {"u": "dr.li"}})
    assert (await _user(hospital, "dr.li")).locked_until is not None

    page = await (await new_context(viewport=PAD)).new_page()
    await sign_in(page, "admin")
    await page.click("[data-testid=tile-admin]")
    await page.get_by_placeholder("搜索姓名、用户名或工号").fill("dr.li")
    await page.keyboard.press("Enter")
    row = page.locator("[data-testid='user-dr.li']")
    await row.get_by_text("已锁定").wait_for()
    await screenshot(page, "admin-users-locked")
    await row.get_by_role("button", name="解锁").click()
    await page.get_by_text("已解锁，李医生 可以重新登录").wait_for()
    await row.get_by_text("正常").wait_for()
    assert (await _user(hospital, "dr.li")).locked_until is None

    await row.get_by_role("button", name="重置密码").click()
    await page.get_by_role("button", name="确认").click()
    dialog = page.locator("[data-testid=one-time-password]")
    await dialog.get_by_text("请当面交给 李医生").wait_for()
    password = (await dialog.locator(".password").inner_text()).strip()
    await screenshot(page, "admin-one-time-password")
    await dialog.get_by_role("button", name="已交付").click()
    await row.get_by_text("待改初始密码").wait_for()
    li = await _user(hospital, "dr.li")
    assert li.password_must_change is True and len(password) == 12

    # pt.sun also works as a nurse now.
    sun = page.locator("[data-testid='user-pt.sun']")
    await page.get_by_placeholder("搜索姓名、用户名或工号").fill("")
    await page.keyboard.press("Enter")
    await sun.get_by_role("button", name="编辑").click()
    editor = page.locator("[data-testid=edit-user]")
    await editor.get_by_role("checkbox", name="护士").click()
    await screenshot(page, "admin-edit-roles")
    await editor.get_by_role("button", name="保存").click()
    await sun.get_by_text("护士").wait_for()
    assert (await _user(hospital, "pt.sun")).roles == ["therapist", "nurse"]

    # dr.li signs in with the one-time password and is asked for a new one.
    li_page = await (await new_context(viewport=PAD)).new_page()
    await li_page.goto("/login")
    await li_page.get_by_label("用户名").fill("dr.li")
    await li_page.get_by_label("密码").fill(password)
    await li_page.get_by_role("button", name="登录").click()
    await li_page.get_by_text("首次登录或密码已重置：请先设置新密码").wait_for()
    await screenshot(li_page, "admin-one-time-password-sign-in")
    await li_page.get_by_label("当前密码").fill(password)
    await li_page.get_by_label("新密码", exact=True).fill("Ward-7-Night")
    await li_page.get_by_label("再次输入新密码").fill("Ward-7-Night")
    await li_page.get_by_role("button", name="修改密码").click()
    await li_page.wait_for_selector("[data-testid=hello]")
    li = await _user(hospital, "dr.li")
    assert li.password_must_change is False


async def test_admin_imports_departments_after_the_check(
    hospital, live_server, new_context, tmp_path
) -> None:
    bad = tmp_path / "科室-有误.csv"
    bad.write_text(
        "科室编码 code,科室名称 name,英文名称 English name\nGS,普外科,General Surgery\n,神经内科,Neurology\n",
        encoding="utf-8",
    )
    good = tmp_path / "科室.csv"
    good.write_text(
        "科室编码 code,科室名称 name,英文名称 English name\nGS,普外科,General Surgery\nNEU,神经内科,Neurology\nCAR,心内科,Cardiology\n",
        encoding="utf-8",
    )
    before = await _departments(hospital)
    page = await (await new_context(viewport=PAD)).new_page()
    await sign_in(page, "admin")
    await page.click("[data-testid=tile-admin]")
    await page.get_by_role("tab", name="数据导入").click()
    await page.set_input_files("[data-testid=import-file]", str(bad))
    await page.click("[data-testid=preview]")
    errors = page.locator("[data-testid=import-errors]")
    await errors.get_by_text("科室编码").wait_for()
    await page.get_by_text("发现 1 处错误").wait_for()
    assert await page.locator("[data-testid=confirm]").is_disabled()
    await screenshot(page, "admin-import-errors")
    assert await _departments(hospital) == before

    await page.set_input_files("[data-testid=import-file]", str(good))
    await page.click("[data-testid=preview]")
    rows = page.locator("[data-testid=import-rows]")
    await rows.locator("tr.action-create").nth(1).wait_for()
    await page.get_by_text("新增 2 行，更新 0 行，未变 1 行").wait_for()
    await screenshot(page, "admin-import-preview")
    assert await _departments(hospital) == before  # the check writes nothing
    await page.click("[data-testid=confirm]")
    await (
        page.locator("[data-testid=import-done]")
        .get_by_text("导入完成：新增 2，更新 0，未变 1")
        .wait_for()
    )
    assert await _departments(hospital) == before + 2
    await page.get_by_role("tab", name="科室与科主任").click()
    await page.locator("[data-testid=dept-NEU]").get_by_text("神经内科").wait_for()


async def test_medical_affairs_reads_and_exports_the_access_log(
    hospital, live_server, new_context
) -> None:
    sun_token = (
        await graphql(
            live_server,
            'mutation { login(username: "pt.sun", password: "bedside-demo") { token } }',
        )
    )["login"]["token"]
    await graphql(live_server, '{ patients(search: "周") { id } }', token=sun_token)

    page = await (await new_context(viewport=PAD, accept_downloads=True)).new_page()
    await sign_in(page, "ma.zhao")
    await page.click("[data-testid=tile-access-log]")
    await page.get_by_placeholder("输入人员姓名或用户名").fill("孙")
    await page.get_by_placeholder("输入人员姓名或用户名").press("Tab")
    await (
        page.get_by_label("人员", exact=True)
        .locator("option", has_text="孙")
        .first.wait_for(state="attached")
    )
    await page.click("[data-testid=search]")
    table = page.locator("[data-testid=log-rows]")
    await table.get_by_text("孙").first.wait_for()
    await table.get_by_text("患者查询").first.wait_for()
    # Every row shown is pt.sun's (the unfiltered first answer is replaced).
    await page.wait_for_function(
        """() => { const cells = [...document.querySelectorAll('[data-testid=log-rows] tbody tr td:nth-child(2)')];
                   return cells.length > 0 && cells.every((c) => c.textContent.includes('pt.sun')) }"""
    )
    await screenshot(page, "access-log")

    exports_before = await _exports(hospital)
    async with page.expect_download() as download_info:
        await page.click("[data-testid=export]")
    download = await download_info.value
    assert download.suggested_filename.endswith(".csv")
    content = (await download.path()).read_text(encoding="utf-8-sig")
    assert content.startswith("时间 time,人员 who") and "pt.sun" in content
    await page.get_by_text("导出已记入访问日志").wait_for()
    assert await _exports(hospital) == exports_before + 1
    # The security officer has no audit verification (the administrator's).
    assert await page.locator("[data-testid=verify]").count() == 0


async def test_admin_verifies_the_audit_chains(hospital, live_server, new_context) -> None:
    page = await (await new_context(viewport=PAD)).new_page()
    await sign_in(page, "admin")
    await page.click("[data-testid=tile-access-log]")
    await page.click("[data-testid=verify]")
    await page.get_by_text("全部审计链完整").wait_for()
    await page.get_by_text("校验时间").wait_for()
    await screenshot(page, "audit-verification")


async def _exports(hospital) -> int:
    async with hospital.db.session() as session:
        stmt = (
            sa.select(sa.func.count())
            .select_from(AccessLog)
            .where(AccessLog.action == "export", AccessLog.resource == "accessLog")
        )
        return int((await session.execute(stmt)).scalar_one())


async def test_medical_affairs_scores_issues_and_ends_a_penalty(
    hospital, live_server, new_context
) -> None:
    page = await (await new_context(viewport=PAD)).new_page()
    await sign_in(page, "ma.zhao")
    await page.click("[data-testid=tile-penalties]")
    form = page.locator("[data-testid=record-score]")
    await form.get_by_placeholder("输入医师姓名或用户名").fill("李医生")
    await form.get_by_placeholder("输入医师姓名或用户名").press("Tab")
    await (
        form.get_by_label("被记分医师", exact=True)
        .locator("option", has_text="李医生")
        .wait_for(state="attached")
    )
    await form.get_by_label("扣分项目").select_option("SS-01")  # 越级开展手术, 6 points
    await form.get_by_label("事实经过").fill("未经授权开展三级以上手术")
    await form.get_by_role("button", name="记分").click()
    await page.get_by_text("已记分，已通知 李医生").wait_for()
    scores = page.locator("[data-testid=scores]")
    row = scores.locator("tr", has_text="未经授权开展三级以上手术")
    await row.get_by_text("已通知").wait_for()
    await row.get_by_role("button", name="确认").click()
    await row.get_by_text("已确认").wait_for()

    penalties = page.locator("[data-testid=penalty-list]")
    pending = penalties.locator("tr", has_text="单次记分≥6分").filter(has_text="未下发")
    await pending.wait_for()
    await screenshot(page, "penalties-pending")
    await pending.get_by_role("button", name="下发").click()
    issued = penalties.locator("tr", has_text="单次记分≥6分").filter(has_text="已下发")
    await issued.wait_for()
    await issued.get_by_role("button", name="结束").click()
    await page.get_by_label("结束原因").fill("处罚期满")
    await page.locator(".dialog-body").get_by_role("button", name="结束").click()
    ended = penalties.locator("tr", has_text="单次记分≥6分").filter(has_text="已结束")
    await ended.get_by_text("处罚期满").wait_for()
    await screenshot(page, "penalties-ended")

    token = (
        await graphql(
            live_server,
            'mutation { login(username: "ma.zhao", password: "bedside-demo") { token } }',
        )
    )["login"]["token"]
    listed = (
        await graphql(
            live_server,
            "{ penalties { status endReason rule { code } doctor { username } } }",
            token=token,
        )
    )["penalties"]
    assert {
        "status": "ended",
        "endReason": "处罚期满",
        "rule": {"code": "ONE-6"},
        "doctor": {"username": "dr.li"},
    } in listed
