"""A department head works through his approvals on a phone, from the login screen: the
list says what is asked (patient, procedure, grade in words, an emergency's time left);
the detail shows the patient, the surgeon by name, grades and catalog levels in words,
the planned date with its year, the history in people's words with full hashes and the
server's chain check; 驳回 asks for a reason and is not the most prominent button; the
sticky bar hides nothing; after a decision the app goes on to the next task, then back to
the list with the decided ones gone; the person picker finds staff by name (an unknown
one is 用户不存在); an old link to a decided task shows the decision.

The applications are the surgeons' (set through the API, as they would file them)."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.browser.conftest import PHONE, screenshot, sign_in
from tests.browser.scenes import (
    graphql,
    submit_emergency_application,
    submit_grade4_application,
    token_for,
)

pytestmark = pytest.mark.browser


async def test_department_head_decides_his_tasks_on_a_phone(
    hospital, live_server, new_context
) -> None:
    planned = await submit_grade4_application(live_server)
    emergency = await submit_emergency_application(live_server)
    urgent_task = next(t for t in emergency["tasks"] if t["assignee"]["username"] == "chief.wang")
    planned_task = next(t for t in planned["tasks"] if t["assignee"]["username"] == "chief.wang")
    head = await token_for(live_server, "chief.wang")
    patients = (await graphql(live_server, "{ patients { id name } }", token=head))["patients"]
    wang_patient = next(p for p in patients if p["name"] == "王德明")
    await graphql(  # the ward records the patient's allergy
        live_server,
        'mutation($p: ID!) { setPatientAllergies(patientId: $p, allergies: ["青霉素"]) { allergies } }',
        {"p": wang_patient["id"]},
        head,
    )

    page = await (await new_context(viewport=PHONE, is_mobile=True, has_touch=True)).new_page()
    await sign_in(page, "chief.wang")
    await page.wait_for_selector("[data-testid=tile-tasks] .van-badge:has-text('2')")
    await page.click("[data-testid=tile-tasks]")

    # The list: what is asked, the emergency first with the time left of its 2 hours.
    urgent_row = page.locator(f"[data-testid=task-{urgent_task['id']}]")
    planned_row = page.locator(f"[data-testid=task-{planned_task['id']}]")
    await urgent_row.wait_for()
    urgent_text = await urgent_row.inner_text()
    assert "王德明 · 阑尾切除术" in urgent_text and "二级手术" in urgent_text
    assert re.search(r"急诊 · 剩余 (1小时5\d分钟|2小时)", urgent_text), urgent_text
    planned_text = await planned_row.inner_text()
    assert "张秀英 · 胰十二指肠切除术" in planned_text and "四级手术" in planned_text
    assert "急诊" not in planned_text
    first = page.locator("[data-testid^=task-]").first
    assert await first.get_attribute("data-testid") == f"task-{urgent_task['id']}"
    await expect(page.get_by_text("离线数据")).to_have_count(0)  # the network's answer is in
    await screenshot(page, "phone-approver-tasks")

    # The emergency's detail, in words.
    await urgent_row.click()
    await page.get_by_test_id("patient-card").wait_for()
    patient = await page.inner_text("[data-testid=patient-card]")
    for shown in ("王德明", "男", "岁", "病历号 P0003", "青霉素"):
        assert shown in patient
    assert await page.inner_text("[data-testid=row-surgeon] .van-cell__value") == "李医生"
    assert await page.inner_text("[data-testid=row-grade] .van-cell__value") == "二级手术"
    assert await page.inner_text("[data-testid=row-level] .van-cell__value") == "院级目录"
    planned_at = await page.inner_text("[data-testid=row-planned] .van-cell__value")
    assert re.fullmatch(r"20\d\d/\d\d/\d\d \d\d:\d\d", planned_at), planned_at
    history = page.get_by_test_id("history")
    await expect(page.get_by_test_id("chain")).to_have_text("记录完整，哈希链已校验")
    await expect(history).to_contain_text("待办发给 王主任 · 科主任审批")
    hashes = await history.locator("code").all_inner_texts()
    assert hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes)
    await expect(page.get_by_test_id("documents")).to_contain_text("未上传术前资料")
    body = await page.inner_text("[data-testid=task-detail]")
    for raw in ("dr.li", "provincial", "hospital", "task_created", "grade"):
        assert raw not in body

    # The destructive action is the least prominent; the sticky bar hides nothing.
    reject, approve = page.get_by_test_id("reject"), page.get_by_test_id("approve")
    assert "van-button--plain" in (await reject.get_attribute("class") or "")
    assert "van-button--small" in (await reject.get_attribute("class") or "")
    assert "van-button--plain" not in (await approve.get_attribute("class") or "")
    reject_box, approve_box = await reject.bounding_box(), await approve.bounding_box()
    assert reject_box and approve_box and approve_box["width"] > reject_box["width"]
    await page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    bar = await page.locator(".bar.decision").bounding_box()
    last = await page.locator("[data-testid=more]").bounding_box()
    assert bar and last and last["y"] + last["height"] <= bar["y"] + 1
    await screenshot(page, "phone-approver-task-detail", full_page=True)

    # 驳回 asks for a reason.
    await reject.tap()
    await page.get_by_text("驳回时请填写审批意见，说明原因").wait_for()

    # Approve: the app goes on to the next pending task.
    await page.get_by_label("审批意见").fill("同意急诊手术")
    await approve.tap()
    await page.get_by_text("已同意", exact=True).wait_for()
    await page.wait_for_url(f"**/tasks/{planned_task['id']}")
    await expect(page.get_by_test_id("row-grade")).to_contain_text("四级手术")
    await expect(page.get_by_test_id("row-level")).to_contain_text("国家级目录")

    # Add a signer through the picker: an unknown name, then a colleague by name.
    await page.get_by_test_id("more").click()
    await page.get_by_test_id("pick-person").click()
    await page.get_by_placeholder("输入姓名搜索").fill("不存在的人")
    await page.get_by_test_id("no-person").get_by_text("用户不存在").wait_for()
    await page.get_by_placeholder("输入姓名搜索").fill("刘")
    await page.get_by_test_id("person-party.liu").click()
    await page.get_by_test_id("add-signer").click()
    await page.get_by_text("已加签刘书记").wait_for()
    await expect(history).to_contain_text("加签 刘书记")

    # The last one: back to the list, where the decided ones are gone.
    await page.get_by_label("审批意见").fill("同意")
    await page.get_by_test_id("approve").tap()
    await page.wait_for_url("**/tasks")
    await page.get_by_text("暂无数据").wait_for()
    assert await page.locator("[data-testid^=task-]").count() == 0

    # An old link to a decided task shows the decision, not "内容不存在或已删除".
    await page.goto(f"/tasks/{urgent_task['id']}")
    banner = page.get_by_test_id("decided-banner")
    await banner.wait_for()
    await expect(banner).to_contain_text("您已同意（20")
    await expect(banner).to_contain_text("同意急诊手术")
    assert await page.get_by_test_id("approve").count() == 0
    assert "内容不存在或已删除" not in await page.inner_text("body")
    await screenshot(page, "phone-approver-decided-link")

    # In English: the catalog's English names, grades and levels in words, nothing raw.
    await page.evaluate("localStorage.setItem('bedside.locale', 'en')")
    await page.reload()
    await expect(page.get_by_test_id("row-procedure")).to_contain_text("Appendectomy")
    await expect(page.get_by_test_id("row-grade")).to_contain_text("Grade 2 surgery")
    await expect(page.get_by_test_id("row-level")).to_contain_text("Hospital catalog")
    await expect(page.get_by_test_id("chain")).to_have_text("Complete: hash chain verified")
    await expect(page.get_by_test_id("row-planned")).to_be_visible()
    english = await page.inner_text("[data-testid=task-detail]")
    for raw in ("dr.li", "task_created", "approved", "hospital"):
        assert raw not in english
    await screenshot(page, "phone-approver-decided-link-en", full_page=True)

    after = await graphql(
        live_server,
        "query($id: ID!) { approvalInstance(id: $id) { status tasks { status assignee { username } } } }",
        {"id": planned["id"]},
        head,
    )
    tasks = {(t["assignee"]["username"], t["status"]) for t in after["approvalInstance"]["tasks"]}
    assert ("chief.wang", "approved") in tasks and ("party.liu", "pending") in tasks


async def test_department_head_transfers_a_task_to_a_colleague(
    hospital, live_server, new_context
) -> None:
    planned = await submit_grade4_application(live_server)
    task = next(t for t in planned["tasks"] if t["assignee"]["username"] == "chief.wang")
    page = await (await new_context(viewport=PHONE, is_mobile=True, has_touch=True)).new_page()
    await sign_in(page, "chief.wang")
    await page.goto(f"/tasks/{task['id']}")
    await page.get_by_test_id("more").click()
    await page.get_by_test_id("pick-person").click()
    await page.get_by_placeholder("输入姓名搜索").fill("刘书记")
    await page.get_by_test_id("person-party.liu").click()
    await page.get_by_label("审批意见").fill("请刘书记审批")
    await page.get_by_test_id("transfer").click()
    await page.get_by_text("已转交给刘书记").wait_for()
    await page.wait_for_url("**/tasks")  # nothing else pending: back to the list
    await page.get_by_text("暂无数据").wait_for()

    after = await graphql(
        live_server,
        "query($id: ID!) { approvalInstance(id: $id) { tasks { status assignee { username } } history { action } } }",
        {"id": planned["id"]},
        await token_for(live_server, "chief.wang"),
    )
    tasks = {(t["assignee"]["username"], t["status"]) for t in after["approvalInstance"]["tasks"]}
    assert tasks == {("chief.wang", "transferred"), ("party.liu", "pending")}
    assert [e["action"] for e in after["approvalInstance"]["history"]].count("transferred") == 1
