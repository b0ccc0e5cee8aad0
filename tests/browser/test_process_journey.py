"""发起审批 on a phone, in Chinese: a doctor fills in a 请假 form rendered from its
definition (a missing answer is named before anything is sent), the department head
finds it in his tasks with the form's own labels and approves it, and the doctor sees
it approved in his applications."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser.conftest import PHONE, screenshot, sign_in

pytestmark = pytest.mark.browser


async def test_a_doctor_starts_a_leave_and_his_head_approves_it(
    hospital, live_server, new_context
) -> None:
    doctor = await (await new_context(viewport=PHONE, is_mobile=True, has_touch=True)).new_page()
    await sign_in(doctor, "dr.li")
    await doctor.click("[data-testid=tile-processes]")
    await doctor.get_by_test_id("process-leave").wait_for()
    for name in ("请假", "报销", "采购", "用印"):
        await expect(doctor.get_by_test_id("processes")).to_contain_text(name)
    await screenshot(doctor, "phone-processes")
    await doctor.click("[data-testid=process-leave]")
    await doctor.get_by_test_id("start-process").wait_for()
    await expect(doctor.locator(".van-nav-bar__title")).to_have_text("请假")

    # Nothing filled in: the first required field is named, nothing is sent.
    await doctor.click("[data-testid=submit]")
    await expect(doctor.locator("[data-field=leave_type]")).to_contain_text("请填写“请假类型”")
    assert doctor.url.endswith("/processes/leave/new")

    await doctor.click("[data-testid=option-leave_type-personal]")
    await doctor.locator("[data-testid=field-starts_at]").fill("2026-12-07T08:00")
    await doctor.locator("[data-testid=field-ends_at]").fill("2026-12-08T17:30")
    await doctor.locator("[data-testid=field-days] input").fill("2")
    await doctor.locator("[data-testid=field-reason] textarea").fill("家中有事，需回老家处理")
    # More than one day: a covering colleague becomes required.
    await expect(doctor.locator("[data-field=deputy] .van-field__label--required")).to_have_count(1)
    await expect(
        doctor.locator("[data-field=sick_note] .van-field__label--required")
    ).to_have_count(0)
    await doctor.click("[data-testid=field-deputy]")
    await doctor.locator("[data-testid=picker-search] input").fill("钱")
    await doctor.click("[data-testid='person-dr.qian']")
    await expect(doctor.locator("[data-testid=field-deputy] input")).to_have_value("钱医生")
    await expect(doctor.locator(".van-popup--bottom")).to_be_hidden()
    await screenshot(doctor, "phone-process-leave-form", full_page=True)

    await doctor.click("[data-testid=submit]")
    await doctor.get_by_test_id("task-detail").wait_for()
    await expect(doctor.get_by_test_id("outcome")).to_have_text("审批中")
    await expect(doctor.get_by_test_id("instance-status")).to_contain_text("科主任审批（王主任）")
    await expect(doctor.get_by_test_id("row-leave_type")).to_contain_text("事假")
    instance_id = doctor.url.rsplit("/", 1)[1]
    await screenshot(doctor, "phone-process-leave-submitted")

    # The head of department, on his phone.
    head = await (await new_context(viewport=PHONE, is_mobile=True, has_touch=True)).new_page()
    await sign_in(head, "chief.wang")
    await head.click("[data-testid=tile-tasks]")
    row = head.locator("[data-testid^=task-]", has_text="请假")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("请假 · 事假 · 2 天")
    await expect(row).to_contain_text("李医生")
    await expect(head.get_by_text("欢迎，王主任")).to_be_hidden()  # the sign-in greeting has gone
    await screenshot(head, "phone-process-head-tasks")
    await row.click()
    await head.get_by_test_id("application-rows").wait_for()
    rows = head.get_by_test_id("application-rows")
    for label, value in (
        ("申请人", "李医生"),
        ("请假类型", "事假"),
        ("开始时间", "2026-12-07 08:00"),
        ("结束时间", "2026-12-08 17:30"),
        ("请假天数", "2 天"),
        ("请假事由", "家中有事，需回老家处理"),
        ("工作交接人", "钱医生"),
    ):
        await expect(rows).to_contain_text(label)
        await expect(rows).to_contain_text(value)
    await expect(rows).not_to_contain_text("leave_type")
    await expect(rows).not_to_contain_text("dr.qian")
    await expect(head.get_by_test_id("instance-status")).to_contain_text("请假")
    await screenshot(head, "phone-process-head-detail")
    await head.locator("#task-comment").fill("同意，注意交接")
    await head.click("[data-testid=approve]")
    await head.wait_for_url("**/tasks")
    await expect(head.locator("[data-testid^=task-]", has_text="请假")).to_have_count(0)

    # The doctor sees it approved.
    await doctor.goto("/processes")
    application = doctor.get_by_test_id(f"process-application-{instance_id}")
    await expect(application.get_by_test_id("status")).to_have_text("已批准")
    await expect(application).to_contain_text("办结于")
    await screenshot(doctor, "phone-process-leave-mine")
    await application.click()
    await expect(doctor.get_by_test_id("outcome")).to_have_text("已批准")
    await expect(doctor.get_by_test_id("history")).to_contain_text("同意，注意交接")
    await expect(doctor.get_by_test_id("history")).to_contain_text("审批通过")
    await screenshot(doctor, "phone-process-leave-approved", full_page=True)
