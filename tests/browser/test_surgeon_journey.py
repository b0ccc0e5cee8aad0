"""A surgeon files a surgery application on a phone, from the login screen: patient and
procedure pickers, the pre-check's findings before submitting (a grade beyond the
surgeon's privilege says so and what to do), documents, submit; then, after the
department head returns it, the notice opens the application, the surgeon amends and
resubmits it, and once approved opens and downloads the 手术审批通知书. A second
application is withdrawn. The approvers' decisions are their own (set through the API, as
they would make them); everything the surgeon does is done in the browser."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import PHONE, screenshot, sign_in
from tests.browser.scenes import SHANGHAI, graphql, token_for
from tests.treatments.helpers import png_bytes

pytestmark = pytest.mark.browser

PENDING = "query { myTasks { id instance { id } } }"


async def decide_as(
    base: str, username: str, instance_id: str, decision: str, comment: str
) -> None:
    """Another user of the hospital decides their task on the application."""
    token = await token_for(base, username)
    tasks = (await graphql(base, PENDING, token=token))["myTasks"]
    task = next(t for t in tasks if t["instance"]["id"] == instance_id)
    extra = ', returnTo: "applicant"' if decision == "RETURN" else ""
    await graphql(
        base,
        f"mutation($id: ID!, $c: String) {{ decideTask(taskId: $id, decision: {decision}, comment: $c{extra}) {{ id }} }}",
        {"id": task["id"], "c": comment},
        token,
    )


async def choose_patient(page: Any, term: str, mrn: str) -> None:
    await page.click("[data-testid=pick-patient]")
    await page.get_by_placeholder("输入姓名或病历号搜索").fill(term)
    await page.click(f"[data-testid=patient-{mrn}]")


async def choose_procedure(page: Any, term: str, code: str) -> str:
    await page.click("[data-testid=pick-procedure]")
    await page.get_by_placeholder("输入手术名称或编码搜索").fill(term)
    row = page.locator(f"[data-testid='procedure-{code}']")
    text = await row.inner_text()
    await row.click()
    return text


async def fill_materials(page: Any, planned: dt.datetime) -> None:
    await page.fill("#planned-at", planned.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M"))
    await page.fill("#diagnosis", "胆囊结石伴慢性胆囊炎")
    await page.get_by_role("button", name="全身麻醉").click()
    await page.fill("#preop", "ASA II级，心肺功能可耐受手术")
    await page.click("[data-testid=consent]")


async def test_surgeon_files_amends_and_gets_the_approval_notice(
    hospital, live_server, new_context
) -> None:
    context = await new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, accept_downloads=True
    )
    page = await context.new_page()
    await sign_in(page, "dr.li")  # privileged up to grade 3
    await page.click("[data-testid=tile-surgery]")
    await page.get_by_text("还没有手术申请").wait_for()
    await page.click("[data-testid=new-application]")

    # The patient by MRN, a grade-4 procedure: the pre-check says what is wrong.
    await choose_patient(page, "P0002", "P0002")
    await page.locator("[data-testid=pick-patient]", has_text="张秀英").wait_for()
    listed = await choose_procedure(page, "胰十二指肠", "52.7")
    assert "四级手术" in listed and "国家级目录" in listed
    assert await page.inner_text("[data-testid=chosen-grade]") == "四级手术"
    planned = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    await page.fill("#planned-at", planned.astimezone(SHANGHAI).strftime("%Y-%m-%dT%H:%M"))
    await page.click("[data-testid=submit]")  # refused: the findings of the submission
    privilege = page.locator("[data-testid=finding-NO_PRIVILEGE]")
    await privilege.wait_for()
    words = await privilege.inner_text()
    assert "本手术为四级手术" in words and "向医务处申请四级手术授权" in words
    assert " / " not in words and "grade" not in words
    findings = await page.inner_text("[data-testid=findings]")
    for missing in ("缺少术前诊断", "缺少麻醉方式", "缺少术前评估", "手术知情同意书未签署"):
        assert missing in findings
    await screenshot(page, "phone-surgeon-precheck-findings", full_page=True)

    # A grade-3 procedure the surgeon may do, the materials, a document: the pre-check,
    # asked before submitting, passes.
    await choose_procedure(page, "51.23", "51.23")
    assert await page.inner_text("[data-testid=chosen-grade]") == "三级手术"
    await fill_materials(page, planned)
    await page.set_input_files(
        "[data-testid=upload] input[type=file]",
        files=[{"name": "preop.png", "mimeType": "image/png", "buffer": png_bytes("green")}],
    )
    await page.wait_for_selector("[data-testid=document]")
    await page.click("[data-testid=precheck]")
    await page.get_by_text("预审通过，可以提交").wait_for()
    await screenshot(page, "phone-surgeon-apply", full_page=True)
    await page.click("[data-testid=submit]")

    # The application: where it waits, and the pre-check as the approvers see it.
    await page.wait_for_url("**/approvals/*")
    instance_id = page.url.rsplit("/", 1)[1]
    status = page.locator("[data-testid=instance-status]")
    await status.get_by_text("审批中").wait_for()
    assert "科主任审批（王主任）" in await status.inner_text()
    assert "预审通过" in await page.inner_text("[data-testid=precheck-card]")
    documents = page.get_by_test_id("documents")
    await expect(page.get_by_test_id("task-detail")).to_contain_text("术前资料（1）")
    await documents.locator("img").wait_for()
    await page.click("text=返回")
    row = page.locator(f"[data-testid=application-{instance_id}]")
    await row.get_by_text("审批中").wait_for()
    assert (
        await page.locator("[data-testid^=application-]").count() == 1
    )  # the refused one left nothing
    text = await row.inner_text()
    assert "张秀英 · 腹腔镜胆囊切除术" in text and "三级手术" in text
    assert "等待：科主任审批（王主任）" in text and "剩余" in text
    await screenshot(page, "phone-surgeon-my-applications")

    # The head returns it; the notice opens the application, which the surgeon amends.
    await decide_as(live_server, "chief.wang", instance_id, "RETURN", "请补充术前讨论记录")
    await page.goto("/notices")
    notice = page.locator("[data-testid^=notice-]", has_text="退回").first
    await notice.wait_for(timeout=20_000)
    await notice.click()
    await notice.locator("[data-testid^=open-subject-]").click()
    await page.wait_for_url(f"**/approvals/{instance_id}")
    await page.get_by_text("已退回给您，请修改后重新提交").wait_for()
    assert "请补充术前讨论记录" in await page.inner_text("[data-testid=history]")
    await page.click("[data-testid=amend]")
    await page.wait_for_url(f"**/surgery/{instance_id}/amend")
    diagnosis = page.locator("#diagnosis")
    await expect(diagnosis).to_have_value("胆囊结石伴慢性胆囊炎")  # as filed
    await diagnosis.fill("胆囊结石伴慢性胆囊炎，术前讨论记录已补充")
    await page.fill("#amend-comment", "已补充术前讨论记录")
    await page.click("[data-testid=submit]")
    await page.wait_for_url(f"**/approvals/{instance_id}")
    await page.locator("[data-testid=instance-status]").get_by_text("审批中").wait_for()
    assert "修改后重新提交" in await page.inner_text("[data-testid=history]")
    await expect(page.get_by_test_id("task-detail")).to_contain_text("术前讨论记录已补充")

    # Approved by the head and medical affairs: the notice opens and downloads.
    await decide_as(live_server, "chief.wang", instance_id, "APPROVE", "同意")
    await decide_as(live_server, "ma.zhao", instance_id, "APPROVE", "同意")
    await page.reload()
    await page.locator("[data-testid=instance-status]").get_by_text("已批准").wait_for()
    async with page.expect_download() as download_info:
        await page.click("[data-testid=download-notice]")
    download = await download_info.value
    assert download.suggested_filename == f"surgery-approval-{instance_id}.pdf"
    pdf = await asyncio.to_thread((await download.path()).read_bytes)
    assert pdf.startswith(b"%PDF-")
    async with context.expect_page() as opened:
        await page.click("[data-testid=open-notice]")
    assert (await opened.value).url.startswith("blob:")
    await screenshot(page, "phone-surgeon-approved", full_page=True)


async def test_surgeon_withdraws_an_application(hospital, live_server, new_context) -> None:
    page = await (await new_context(viewport=PHONE, is_mobile=True, has_touch=True)).new_page()
    await sign_in(page, "dr.li")
    await page.goto("/surgery/new")
    await choose_patient(page, "王德", "P0003")
    await choose_procedure(page, "阑尾", "47.09")
    await fill_materials(page, dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    await page.click("[data-testid=submit]")
    await page.wait_for_url("**/approvals/*")
    instance_id = page.url.rsplit("/", 1)[1]
    await page.click("[data-testid=withdraw]")
    await page.get_by_text("确定撤回这份手术申请？").wait_for()
    await page.get_by_role("button", name="撤回申请").last.click()
    await page.locator("[data-testid=instance-status]").get_by_text("已撤回").wait_for()
    assert await page.locator("[data-testid=withdraw]").count() == 0

    token = await token_for(live_server, "dr.li")
    after = await graphql(
        live_server,
        "query($id: ID!) { approvalInstance(id: $id) { status tasks { status } } }",
        {"id": instance_id},
        token,
    )
    assert after["approvalInstance"]["status"] == "withdrawn"
    assert {t["status"] for t in after["approvalInstance"]["tasks"]} == {"cancelled"}
