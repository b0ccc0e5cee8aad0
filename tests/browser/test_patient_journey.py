"""The patient inside WeChat, from the Official Account's menu: books after checking day,
time, room and item; reads the receipt (patient, therapist, room, how to get there) and
saves it as the server's PDF (预约后可打印回执单); the cancel dialog says which button
keeps the booking; after the therapist's treatment the course has one session less; the
notices are in words (no channel codes)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import screenshot
from tests.browser.scenes import graphql, token_for
from tests.browser.test_platform_signin import (  # noqa: F401 - fixtures
    menu_entry,
    oa_hospital,
    oa_server,
    wechat_page,
)
from tests.simulators.platforms import platform_sim, platform_sim_server  # noqa: F401
from tests.surgery.test_routing import pdf_text
from tests.treatments.helpers import png_bytes

pytestmark = pytest.mark.browser

ITEMS = "{ treatmentItems { code currentConsent { id sha256 } } }"


async def treat_walk_in(base: str, order_id: str) -> None:
    """pt.sun treats 周建国 once on his physiotherapy order, start to archive (the
    therapist's own screens are another journey)."""
    token = await token_for(base, "pt.sun")
    walk_in = await graphql(
        base, "mutation($o: ID!) { registerWalkIn(orderId: $o) { id } }", {"o": order_id}, token
    )
    record = await graphql(
        base,
        "mutation($a: ID!) { startTreatment(appointmentId: $a) { id } }",
        {"a": walk_in["registerWalkIn"]["id"]},
        token,
    )
    record_id = record["startTreatment"]["id"]
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        uploaded = await client.post(
            "/attachments",
            files={"file": ("signature.png", png_bytes("black"), "image/png")},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert uploaded.status_code in (200, 201), uploaded.text
    consent = next(
        i
        for i in (await graphql(base, ITEMS, token=token))["treatmentItems"]
        if i["code"] == "PHYSIO"
    )["currentConsent"]
    for document, variables in (
        (
            'mutation($r: ID!, $c: ID!, $h: String!, $s: String!) { signConsent(recordId: $r, consentTextId: $c, textSha256: $h, signatureKey: $s, signerName: "周建国") { id } }',
            {"c": consent["id"], "h": consent["sha256"], "s": uploaded.json()["key"]},
        ),
        (
            "mutation($r: ID!, $d: JSON!) { saveTreatmentRecord(recordId: $r, data: $d) { id } }",
            {"d": {"modality": "牵引 traction", "minutes": 15, "reaction": "无 none"}},
        ),
        (
            "mutation($r: ID!, $d: JSON!) { saveAssessment(recordId: $r, data: $d) { id } }",
            {"d": {"pain_score": 2}},
        ),
        ("mutation($r: ID!) { archiveTreatment(recordId: $r) { status } }", {}),
    ):
        await graphql(base, document, {"r": record_id, **variables}, token)


async def unfolded(page: Any, selector: str) -> None:
    """Until a notice's body is on screen whole (its fold has finished opening)."""
    await page.locator(selector).wait_for(state="visible")
    await page.wait_for_function(
        "sel => { const el = document.querySelector(sel); const w = el && el.closest('.van-collapse-item__wrapper');"
        " return !!w && !w.style.height && w.getBoundingClientRect().height > 0 }",
        arg=selector,
    )


def remaining(text: str) -> int:
    found = re.search(r"剩余 (\d+) 次", text)
    assert found, text
    return int(found.group(1))


async def test_patient_books_checks_prints_cancels_and_counts_down(
    oa_hospital,
    oa_server,
    wechat_page,
    platform_sim,  # noqa: F811
) -> None:
    platform_sim.state.oa_oauth_domain = "127.0.0.1"
    platform_sim.state.oa_wechat_user = "demo-openid-zhou"  # patient.zhou's openid
    page: Any = wechat_page
    await page.goto(menu_entry(oa_server, "预约治疗"))
    await page.wait_for_selector("[data-testid^=order-]")
    order = page.locator("[data-testid^=order-]").filter(has_text="理疗").first
    order_id = (await order.get_attribute("data-testid")).removeprefix("order-")
    before = remaining(await order.inner_text())

    # Booking: the choice is shown back before anything is booked.
    await order.get_by_role("button", name="预约").click()
    await page.wait_for_selector("[data-testid=slots]")
    slot = page.locator("[data-testid^=slot-]:not([disabled])").first
    slot_time = (await slot.locator("strong").inner_text()).strip()
    await slot.tap()
    confirm = page.locator("[data-testid=booking-confirm]")
    await confirm.wait_for()
    assert (await page.inner_text("[data-testid=confirm-item]")) == "理疗"
    assert re.search(
        r"\d{4}年\d{1,2}月\d{1,2}日星期.", await page.inner_text("[data-testid=confirm-day]")
    )
    assert (await page.inner_text("[data-testid=confirm-time]")).startswith(slot_time)
    assert "理疗室1" in await page.inner_text("[data-testid=confirm-room]")
    await page.wait_for_selector(".van-dialog:not(.van-dialog-bounce-enter-active)")
    await screenshot(page, "phone-patient-booking-confirm")
    # 再看看: nothing is booked.
    await page.get_by_role("button", name="再看看").click()
    await confirm.wait_for(state="hidden")
    token = await token_for(oa_server, "patient.zhou")
    mine = "{ myAppointments { id status } }"
    assert [
        a
        for a in (await graphql(oa_server, mine, token=token))["myAppointments"]
        if a["status"] == "booked"
    ] == []
    await slot.tap()
    await page.get_by_role("button", name="确认预约").click()

    # The receipt in words: patient, item, time, room, therapist, how to get there.
    await page.wait_for_selector("[data-testid=appointment-status]:has-text('已预约')")
    receipt = await page.inner_text("[data-testid=receipt]")
    for expected in ("周建国", "理疗", "理疗室1", "孙治疗师", "门诊楼3层", "回执号", slot_time):
        assert expected in receipt, expected
    assert "No." not in receipt and "arrive" not in await page.inner_text("main")
    await page.wait_for_selector(".van-toast", state="hidden")
    await screenshot(page, "phone-patient-receipt", full_page=True)

    # 打印/保存回执: the server's PDF, saved.
    async with page.expect_download() as download_info:
        await page.get_by_role("button", name="打印/保存回执").click()
    download = await download_info.value
    assert download.suggested_filename.startswith("receipt-YY")
    pdf = await asyncio.to_thread(Path(await download.path()).read_bytes)
    assert pdf.startswith(b"%PDF-")
    text = "".join((await pdf_text(pdf)).split())
    receipt_no = (await page.inner_text("[data-testid=receipt-no]")).split()[-1]
    for expected in ("治疗预约回执单", receipt_no, "周建国", "孙治疗师", "门诊楼3层"):
        assert expected in text, expected

    # Cancel: the dialog names both choices; 不取消 keeps the booking.
    await page.get_by_role("button", name="取消预约").click()
    dialog = page.locator(".van-dialog")
    await dialog.wait_for()
    assert "取消这次预约？" in await dialog.inner_text()
    assert await dialog.get_by_role("button", name="不取消").is_visible()
    assert await dialog.get_by_role("button", name="确认取消").is_visible()
    await page.wait_for_selector(".van-dialog:not(.van-dialog-bounce-enter-active)")
    await screenshot(page, "phone-patient-cancel-dialog")
    await dialog.get_by_role("button", name="不取消").click()
    await dialog.wait_for(state="hidden")
    assert "已预约" in await page.inner_text("[data-testid=appointment-status]")
    await page.get_by_role("button", name="取消预约").click()
    await dialog.get_by_role("button", name="确认取消").click()
    await page.wait_for_selector("[data-testid=appointment-status]:has-text('已取消')")

    # The therapist treats him once: one session less on his course.
    await treat_walk_in(oa_server, order_id)
    await page.goto(menu_entry(oa_server, "预约治疗"))
    order = page.locator(f"[data-testid=order-{order_id}]")
    await order.wait_for()
    # The cached list shows first, then the server's.
    await page.wait_for_function(
        "([sel, text]) => document.querySelector(sel)?.innerText.includes(text)",
        arg=[f"[data-testid=order-{order_id}]", f"剩余 {before - 1} 次"],
    )
    await screenshot(page, "phone-patient-orders-after-treatment")

    # Notices: the booking's notice, delivered "应用内" in words, no channel code.
    await page.get_by_test_id("patient-notices").click()
    booked = page.locator("[data-testid^=notice-]").filter(has_text="治疗预约成功").first
    await booked.wait_for()
    booked_id = (await booked.get_attribute("data-testid")).removeprefix("notice-")
    await booked.click()
    notice_body = page.locator(f"[data-testid=notice-body-{booked_id}]")
    await unfolded(page, f"[data-testid=notice-body-{booked_id}]")
    text = await notice_body.inner_text()
    for expected in ("理疗", "治疗室：理疗室1", "怎么走：门诊楼3层", "注意事项：请提前 10 分钟"):
        assert expected in text, expected
    assert "Notes" not in text and " / " not in text
    body = await page.inner_text("[data-testid=notices]")
    assert "inapp" not in body and "webpush" not in body
    assert "标为已读" in body and "送达：" in body and "查看预约" in body
    await screenshot(page, "phone-patient-notices")
