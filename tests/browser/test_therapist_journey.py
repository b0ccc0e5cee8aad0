"""The therapist's whole bedside session on the PAD (1180×820, zh-CN), from the login:
check in, start (payment re-checked), record, photos (one removed), consent signature,
assessment, save, reopen, finish and archive. Afterwards the appointment is fulfilled,
the order has one session fewer, and the worklist and queue say so without a reload.
Also: an unpaid order says why before anything is filled in, and a refused action is
explained in words with what to do."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from playwright.async_api import expect

from api.models.patients import Patient
from api.models.treatments import Appointment, Attachment, TreatmentOrder, TreatmentRecord
from tests.browser.conftest import screenshot, sign_in, wait_for_service_worker
from tests.browser.scenes import graphql, token_for
from tests.treatments.helpers import local_today, make_order, make_slot, png_bytes

pytestmark = pytest.mark.browser

PAD = {"width": 1180, "height": 820}


async def booked(hospital, live_server, *, starts_in: timedelta, paid: bool = True) -> str:
    """周建国 (P0001) booked at the desk into a physiotherapy slot; his order has 5 sessions."""
    order = await make_order(hospital, "P0001", sessions=5, paid=paid)
    slot = await make_slot(hospital, starts_in=starts_in)
    token = await token_for(live_server, "pt.sun")
    data = await graphql(
        live_server,
        "mutation($s: ID!, $o: ID) { bookAppointment(slotId: $s, orderId: $o) { id } }",
        {"s": str(slot), "o": str(order)},
        token,
    )
    return str(data["bookAppointment"]["id"])


async def open_worklist(page) -> None:  # type: ignore[no-untyped-def]
    await sign_in(page, "pt.sun")
    await page.click("[data-testid=tile-worklist]")
    await page.wait_for_selector("[data-testid=worklist]")


async def sign(page) -> None:  # type: ignore[no-untyped-def]
    pad = await page.wait_for_selector("[data-testid=signature-pad]")
    await pad.scroll_into_view_if_needed()
    box = await pad.bounding_box()
    await page.mouse.move(box["x"] + 30, box["y"] + 40)
    await page.mouse.down()
    for step in range(1, 12):
        await page.mouse.move(box["x"] + 30 + step * 18, box["y"] + 40 + (step % 3) * 25)
    await page.mouse.up()


async def in_viewport(page, selector: str) -> bool:  # type: ignore[no-untyped-def]
    return bool(
        await page.eval_on_selector(
            selector,
            "el => { const r = el.getBoundingClientRect();"
            " return r.top >= 0 && r.bottom <= window.innerHeight && r.height > 0 }",
        )
    )


async def test_bedside_session_from_check_in_to_archive(hospital, live_server, new_context) -> None:
    appointment_id = await booked(hospital, live_server, starts_in=timedelta(minutes=5))
    context = await new_context(viewport=PAD)
    page = await context.new_page()
    await open_worklist(page)
    row = page.locator(f"[data-testid=appointment-{appointment_id}]")
    await expect(row).to_contain_text("周建国")
    await expect(row.get_by_test_id("status")).to_have_text("已预约")
    await expect(row.get_by_test_id("remaining")).to_have_text("剩余 5 次")
    await expect(page.get_by_text("离线数据")).to_have_count(0)  # online: no offline note

    # 签到: the server's state comes back with the sync, no reload needed.
    await page.click(f"[data-testid=check-in-{appointment_id}]")
    await expect(row.get_by_test_id("status")).to_have_text("已签到")
    await expect(row.get_by_test_id("unsent-record")).to_have_count(0)
    await expect(page.locator(f"[data-testid=queue-{appointment_id}]")).to_contain_text("等候中")
    await expect(page.locator("[data-testid=queue] .van-cell")).to_have_count(1)
    await expect(page.get_by_test_id("offline-banner")).to_have_count(0)
    await screenshot(page, "pad-therapist-worklist-checked-in")

    # 开始治疗: the payment is shown and re-checked by the server.
    await page.click(f"[data-testid=record-{appointment_id}]")
    payment = page.get_by_test_id("payment-check")
    await expect(payment).to_contain_text("已缴费")
    await expect(payment).to_contain_text("剩余 5 次")
    await page.click("[data-testid=start-treatment]")
    await page.wait_for_selector("[data-testid=consent-text]")
    await expect(page.get_by_test_id("save-record")).to_be_visible()
    assert await in_viewport(page, "[data-testid=archive-record]")  # above the fold

    # Saving an empty form: the errors say what is missing, the first is in view, and
    # each goes away as soon as its field is right. The page is scrolled down first: the
    # first error (at the top) comes into view by itself.
    await page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    await page.wait_for_function("window.scrollY > 0")
    await page.click("[data-testid=save-record]")
    await expect(page.get_by_text("请选择方式")).to_be_visible()
    await expect(page.get_by_text("请先签名")).to_be_visible()
    first_error = page.get_by_text("请选择方式")
    await expect(first_error).to_be_in_viewport()
    await screenshot(page, "pad-therapist-record-errors")
    await page.get_by_role("radio", name="中频").click()
    await expect(page.get_by_text("请选择方式")).to_have_count(0)
    await expect(page.get_by_text("请填写时长(分钟)")).to_be_visible()  # the others stay

    # Two photos before the treatment; the form filled in; the patient signs.
    for colour in ("red", "blue"):
        await page.set_input_files(
            "[data-testid=photos-before] input[type=file]",
            {"name": f"{colour}.png", "mimeType": "image/png", "buffer": png_bytes(colour)},
        )
    await expect(page.locator("[data-testid=photos-before] img.thumb")).to_have_count(2)
    await page.get_by_label("时长(分钟)").fill("30")
    await page.get_by_role("radio", name="无").first.click()
    await page.get_by_label("疼痛评分").fill("4")
    await sign(page)
    await screenshot(page, "pad-therapist-record-filled")
    await page.click("[data-testid=save-record]")
    await page.wait_for_selector("[data-testid=worklist]")
    await expect(row.get_by_test_id("status")).to_have_text("治疗中")
    await expect(row.get_by_test_id("unsent-record")).to_have_count(0)
    await expect(page.get_by_test_id(f"record-{appointment_id}")).to_have_text("继续记录")

    async with hospital.db.session() as session:
        records = (await session.execute(sa.select(TreatmentRecord))).scalars().all()
        assert [(r.status, r.data.get("minutes")) for r in records] == [("draft", 30)]

    # The saved record opens again: values, both photos and the signature; no start panel.
    await page.click(f"[data-testid=record-{appointment_id}]")
    await expect(page.get_by_label("时长(分钟)")).to_have_value("30")
    await expect(page.get_by_label("疼痛评分")).to_have_value("4")
    await expect(page.get_by_role("radio", name="中频")).to_be_checked()
    await expect(page.locator("[data-testid=photos-before] img.thumb")).to_have_count(2)
    await expect(page.get_by_test_id("signature")).to_contain_text("患者已签名：周建国")
    await expect(page.get_by_test_id("start-panel")).to_have_count(0)
    await screenshot(page, "pad-therapist-record-reopened")
    # One photo was of the wrong arm: it goes; the duration is corrected.
    await page.locator("[data-testid=photos-before] [data-testid=remove-photo]").first.click()
    await expect(page.locator("[data-testid=photos-before] img.thumb")).to_have_count(1)
    await page.get_by_label("时长(分钟)").fill("35")

    # 完成并归档
    await page.click("[data-testid=archive-record]")
    await page.get_by_role("dialog").get_by_role("button", name="完成并归档").click()
    await page.wait_for_selector("[data-testid=worklist]")
    await expect(row.get_by_test_id("status")).to_have_text("已完成")
    await expect(row.get_by_test_id("remaining")).to_have_text("剩余 4 次")
    await expect(page.get_by_test_id(f"record-{appointment_id}")).to_have_text("查看记录")
    await expect(page.locator(f"[data-testid=queue-{appointment_id}]")).to_contain_text("已完成")
    await expect(page.locator("[data-testid=queue] .van-cell")).to_have_count(1)
    await expect(page.get_by_test_id("offline-banner")).to_have_count(0)
    await screenshot(page, "pad-therapist-worklist-done")

    async with hospital.db.session() as session:
        [record] = (await session.execute(sa.select(TreatmentRecord))).scalars().all()
        appointment = await session.get(Appointment, int(appointment_id))
        order = await session.get(TreatmentOrder, appointment.order_id)
        photos = (
            await session.execute(
                sa.select(Attachment.purpose)
                .where(Attachment.record_id == record.id)
                .order_by(Attachment.id)
            )
        ).scalars()
        assert (record.status, record.data.get("minutes")) == ("archived", 35)
        assert appointment.status == "fulfilled"
        assert (order.used_sessions, order.sessions) == (1, 5)
        assert sorted(photos) == ["before", "removed", "signature"]

    # The archived record opens read-only.
    await page.click(f"[data-testid=record-{appointment_id}]")
    await expect(page.get_by_test_id("archived")).to_contain_text("已归档")
    await expect(page.get_by_label("时长(分钟)")).to_have_value("35")
    await expect(page.get_by_label("时长(分钟)")).to_be_disabled()
    await expect(page.get_by_test_id("archive-record")).to_have_count(0)
    await expect(page.get_by_test_id("remove-photo")).to_have_count(0)
    await screenshot(page, "pad-therapist-record-archived")


async def test_unpaid_order_says_why_before_anything_is_filled_in(
    hospital, live_server, new_context
) -> None:
    appointment_id = await booked(hospital, live_server, starts_in=timedelta(minutes=5), paid=False)
    context = await new_context(viewport=PAD)
    page = await context.new_page()
    await open_worklist(page)
    await page.click(f"[data-testid=record-{appointment_id}]")
    unpaid = page.get_by_test_id("unpaid")
    await expect(unpaid).to_contain_text("该医嘱未缴费，不能开始治疗")
    await expect(unpaid).to_contain_text("请患者先到收费处缴费")
    await expect(page.get_by_test_id("start-treatment")).to_be_disabled()
    await expect(page.get_by_label("时长(分钟)")).to_have_count(0)  # no form to fill in
    await screenshot(page, "pad-therapist-record-unpaid")
    async with hospital.db.session() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(TreatmentRecord)) == 0


async def test_refused_check_in_is_explained_with_what_to_do(
    hospital, live_server, new_context
) -> None:
    # Tomorrow's appointment: the server checks in only today's.
    appointment_id = await booked(hospital, live_server, starts_in=timedelta(days=1))
    context = await new_context(viewport=PAD)
    page = await context.new_page()
    await sign_in(page, "pt.sun")
    await wait_for_service_worker(page)
    tomorrow = (local_today() + timedelta(days=1)).isoformat()
    await page.goto(f"/worklist?date={tomorrow}")
    row = page.locator(f"[data-testid=appointment-{appointment_id}]")
    await expect(row).to_contain_text("周建国")

    await context.set_offline(True)
    await page.reload()
    await expect(page.get_by_test_id("from-cache")).to_contain_text("离线数据")
    await page.click(f"[data-testid=check-in-{appointment_id}]")
    await expect(row.get_by_test_id("unsent-record")).to_have_text("签到待发送")
    await expect(page.get_by_test_id(f"check-in-{appointment_id}")).to_be_disabled()
    await expect(page.get_by_test_id("offline-banner")).to_contain_text("离线中 · 1 条未发送")
    await screenshot(page, "pad-therapist-worklist-offline")

    await context.set_offline(False)
    banner = page.get_by_test_id("offline-banner")
    await expect(banner).to_contain_text("1 条被拒绝", timeout=20_000)
    await expect(page.get_by_test_id("from-cache")).to_have_count(0)
    await expect(row.get_by_test_id("status")).to_have_text("已预约")  # the server's state
    await banner.get_by_role("link").click()
    refusal = page.get_by_test_id("refusal")
    await expect(refusal).to_contain_text("签到未成功：周建国")
    await expect(refusal).to_contain_text("只能签到当天的预约")
    await expect(refusal).to_contain_text("请刷新工作单核对后丢弃本条")
    await expect(page.get_by_text("CONFLICT")).to_have_count(0)
    await expect(page.get_by_text("checkIn")).to_have_count(0)
    await screenshot(page, "pad-therapist-refused")
    await refusal.get_by_role("button", name="知道了，丢弃").click()
    await expect(refusal).to_have_count(0)
    async with hospital.db.session() as session:
        appointment = await session.get(Appointment, int(appointment_id))
        assert appointment.status == "booked"


async def test_walk_in_is_treated_from_the_pad(hospital, live_server, new_context) -> None:
    """A patient without a booking (随治随走): found by MRN, his order picked, treated now."""
    order_id = await make_order(hospital, "P0001", sessions=3)
    async with hospital.db.session() as session:
        order = await session.get(TreatmentOrder, order_id)
        patient = await session.get(Patient, order.patient_id)
        name = patient.name
    context = await new_context(viewport=PAD)
    page = await context.new_page()
    await open_worklist(page)
    await page.click("[data-testid=walk-in-open]")
    dialog = page.get_by_test_id("walk-in")
    await dialog.get_by_label("患者").fill("P0001")
    await dialog.get_by_role("button", name="查找").click()
    await dialog.get_by_text(name, exact=True).click()
    await expect(page.get_by_test_id(f"walk-in-order-{order_id}")).to_be_visible()
    await expect(dialog).to_contain_text("剩余 3 次")
    await screenshot(page, "pad-therapist-walk-in")
    await page.click(f"[data-testid=walk-in-order-{order_id}]")
    await page.wait_for_selector("[data-testid=bedside-record]")
    await expect(page.get_by_test_id("bedside-record")).to_contain_text(name)
    await expect(page.get_by_test_id("payment-check")).to_contain_text("已缴费")
    await page.click("[data-testid=start-treatment]")
    await page.wait_for_selector("[data-testid=consent-text]")
    async with hospital.db.session() as session:
        walk_ins = (
            (await session.execute(sa.select(Appointment).where(Appointment.walk_in.is_(True))))
            .scalars()
            .all()
        )
    # registered arrived; the start (sent by sync) may already have moved it on
    assert [a.order_id for a in walk_ins] == [order_id]
    assert walk_ins[0].status in ("arrived", "checked-in")
    await page.click("[data-testid=save-record]")  # nothing filled: refused on the device
    await expect(page.get_by_text("请选择方式")).to_be_visible()
    await page.locator(".van-nav-bar__left").click()
    await page.wait_for_selector("[data-testid=worklist]")
    walk_in_row = page.get_by_test_id(f"appointment-{walk_ins[0].id}")
    await expect(walk_in_row).to_contain_text(name)
    await expect(walk_in_row.get_by_test_id("status")).to_have_text("治疗中")
