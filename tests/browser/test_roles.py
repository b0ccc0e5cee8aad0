"""An approver approves a grade-4 application on a phone; a patient books the last free
slot; a chief reads a notice and the read receipt reaches the server."""

from __future__ import annotations

import pytest

from tests.browser.conftest import PHONE, sign_in
from tests.browser.scenes import (
    book_physio,
    graphql,
    physio_slots,
    submit_grade4_application,
    token_for,
)

pytestmark = pytest.mark.browser


async def test_approver_approves_a_grade4_application_on_a_phone(
    hospital, live_server, new_context
) -> None:
    instance = await submit_grade4_application(live_server)
    chief_task = next(t for t in instance["tasks"] if t["assignee"]["username"] == "chief.wang")

    page = await (await new_context(viewport=PHONE, is_mobile=True, has_touch=True)).new_page()
    await sign_in(page, "chief.wang")
    await page.wait_for_selector("[data-testid=tile-tasks] .van-badge:has-text('1')")
    await page.click("[data-testid=tile-tasks]")
    await page.click(f"[data-testid=task-{chief_task['id']}]")
    await page.wait_for_selector("text=胰头占位")
    await page.get_by_label("审批意见").fill("同意，按期手术")
    await page.tap("[data-testid=approve]")
    await page.wait_for_selector("text=已同意")

    token = await token_for(live_server, "chief.wang")
    after = await graphql(
        live_server,
        "query($id: ID!) { approvalInstance(id: $id) { status tasks { status assignee { username } } history { action } } }",
        {"id": instance["id"]},
        token,
    )
    tasks = {t["assignee"]["username"]: t["status"] for t in after["approvalInstance"]["tasks"]}
    assert tasks["chief.wang"] == "approved"
    # Grade 4: medical affairs and the vice-president countersign next.
    assert tasks.get("ma.zhao") == "pending" and tasks.get("vp.chen") == "pending"
    assert after["approvalInstance"]["status"] == "running"


async def test_medical_affairs_returns_an_application_to_the_department_head(
    hospital, live_server, new_context
) -> None:
    instance = await submit_grade4_application(live_server)
    chief_task = next(t for t in instance["tasks"] if t["assignee"]["username"] == "chief.wang")
    await graphql(
        live_server,
        "mutation($id: ID!) { decideTask(taskId: $id, decision: APPROVE) { id } }",
        {"id": chief_task["id"]},
        await token_for(live_server, "chief.wang"),
    )
    ma_token = await token_for(live_server, "ma.zhao")
    tasks = (await graphql(live_server, "{ myTasks { id instance { id } } }", None, ma_token))[
        "myTasks"
    ]
    ma_task = next(t for t in tasks if t["instance"]["id"] == instance["id"])

    page = await (await new_context(viewport=PHONE, is_mobile=True, has_touch=True)).new_page()
    await sign_in(page, "ma.zhao")
    await page.goto(f"/tasks/{ma_task['id']}")
    await page.wait_for_selector("text=胰头占位")
    await page.tap("[data-testid=return]")
    await page.wait_for_selector("text=退回时请填写审批意见")  # a return says why
    await page.get_by_label("审批意见").fill("请补充术前讨论记录")
    await page.tap("[data-testid=return]")
    await page.get_by_text("退回申请人修改").wait_for()
    await page.get_by_text("退回到“科主任审批”重新审批").tap()
    await page.wait_for_selector("text=已退回")

    after = await graphql(
        live_server,
        "query($id: ID!) { approvalInstance(id: $id) { status tasks { status assignee { username } } history { action data } } }",
        {"id": instance["id"]},
        ma_token,
    )
    approval = after["approvalInstance"]
    returned = [e for e in approval["history"] if e["action"] == "returned"]
    assert len(returned) == 1 and returned[0]["data"]["to"] == "dept_head"
    assert returned[0]["data"]["comment"] == "请补充术前讨论记录"
    assert approval["status"] == "running"
    chief = [t["status"] for t in approval["tasks"] if t["assignee"]["username"] == "chief.wang"]
    assert chief == ["approved", "pending"]  # the department head decides again


async def test_patient_books_the_last_free_slot(hospital, live_server, new_context) -> None:
    # Someone else already holds one of the slot's two places.
    _, slot_id, _ = await book_physio(live_server, ["陈志强"])
    page = await (await new_context(viewport=PHONE, is_mobile=True, has_touch=True)).new_page()
    await page.goto("/login")
    await page.get_by_label("用户名").fill("patient.zhou")
    await page.get_by_label("密码").fill("bedside-demo")
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_selector("[data-testid=orders]")
    await page.get_by_role("button", name="预约").first.click()
    slot = page.locator(f"[data-testid=slot-{slot_id}]")
    assert "余 1" in await slot.inner_text()
    await slot.tap()
    await page.get_by_role("button", name="确认预约").click()
    await page.wait_for_selector("[data-testid=appointment-status]:has-text('已预约')")
    assert (await page.inner_text("[data-testid=receipt-no]")).strip()

    token = await token_for(live_server, "pt.sun")
    remaining = {s["id"]: s["remaining"] for s in await physio_slots(live_server, token)}
    assert remaining.get(slot_id, 0) == 0


async def test_chief_marks_a_notice_read(hospital, live_server, new_context) -> None:
    await submit_grade4_application(live_server)  # chief.wang is told of his new task
    page = await (await new_context(viewport=PHONE)).new_page()
    await sign_in(page, "chief.wang")
    await page.click("[data-testid=tile-notices]")
    first = page.locator("[data-testid^=notice-]").first
    await first.click()
    notice_id = (await first.get_attribute("data-testid")).removeprefix("notice-")
    await page.click(f"[data-testid=mark-read-{notice_id}]")
    await page.wait_for_selector("[data-testid=read-receipt]")

    token = await token_for(live_server, "chief.wang")
    notices = (await graphql(live_server, "{ myNotices { id readAt readVia } }", token=token))[
        "myNotices"
    ]
    assert next(n for n in notices if n["id"] == notice_id)["readAt"]
