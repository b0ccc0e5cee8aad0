"""A therapist records two treatments with the network off, reloads, comes back online:
the server has both records (and both consent signatures, and the photo taken before one
treatment) exactly once."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from api.models.treatments import AssessmentRecord, Attachment, ConsentSignature, TreatmentRecord
from tests.browser.conftest import PAD, sign_in, wait_for_service_worker
from tests.browser.scenes import book_physio
from tests.treatments.helpers import png_bytes

pytestmark = pytest.mark.browser


async def record_at_bedside(
    page, appointment_id: str, pain: str, photo: bytes | None = None
) -> None:  # type: ignore[no-untyped-def]
    await page.click(f"[data-testid=record-{appointment_id}]")
    assert "已缴费" in await page.inner_text("[data-testid=payment-check]")
    await page.click("[data-testid=start-treatment]")
    await page.wait_for_selector("[data-testid=consent-text]")
    if photo is not None:
        await page.set_input_files(
            "[data-testid=photos-before] input[type=file]",
            {"name": "before.png", "mimeType": "image/png", "buffer": photo},
        )
        await page.wait_for_selector("[data-testid=photos-before] img.thumb")
    await page.get_by_role("radio", name="中频").click()
    await page.get_by_label("时长(分钟)").fill("30")
    await page.get_by_role("radio", name="无").first.click()
    await page.get_by_label("疼痛评分").fill(pain)
    # Saving without a signature is refused on the device.
    await page.click("[data-testid=save-record]")
    await page.wait_for_selector("text=请先签名")
    pad = await page.wait_for_selector("[data-testid=signature-pad]")
    box = await pad.bounding_box()
    await page.mouse.move(box["x"] + 30, box["y"] + 40)
    await page.mouse.down()
    for step in range(1, 12):
        await page.mouse.move(box["x"] + 30 + step * 18, box["y"] + 40 + (step % 3) * 25)
    await page.mouse.up()
    await page.click("[data-testid=save-record]")
    await page.wait_for_selector("[data-testid=worklist]")


async def test_offline_records_reach_the_server_exactly_once(
    hospital, live_server, new_context
) -> None:
    day, _, ids = await book_physio(live_server, ["陈志强", "周建国"])
    context = await new_context(viewport=PAD)
    page = await context.new_page()
    await sign_in(page, "pt.sun")
    await wait_for_service_worker(page)
    await page.goto(f"/worklist?date={day}")
    for appointment_id in ids:
        await page.wait_for_selector(f"[data-testid=appointment-{appointment_id}]")

    await context.set_offline(True)
    photo = png_bytes("red", (320, 240))
    await record_at_bedside(page, ids[0], "3", photo)
    await record_at_bedside(page, ids[1], "5")

    # A reload with the network off loses nothing: both records wait in the outbox.
    await page.reload()
    await page.wait_for_selector(f"[data-testid=appointment-{ids[1]}]")
    assert await page.locator("[data-testid=unsent-record]").count() == 2
    assert await page.locator("[data-testid=unsent-record]").first.inner_text() == (
        "开始治疗待发送 · 记录待发送"
    )
    # The banner counts the therapist's actions (start and record, twice), not the seven
    # mutations that carry them.
    assert "4 条未发送" in await page.inner_text("[data-testid=offline-banner]")
    assert await page.is_visible("[data-testid=from-cache]")  # 离线数据, with the network off
    async with hospital.db.session() as session:
        assert await session.scalar(sa.select(sa.func.count()).select_from(TreatmentRecord)) == 0

    await context.set_offline(False)
    await page.wait_for_selector("[data-testid=offline-banner]", state="detached", timeout=20_000)

    async with hospital.db.session() as session:
        records = (await session.execute(sa.select(TreatmentRecord))).scalars().all()
        assert sorted(str(r.appointment_id) for r in records) == sorted(ids)
        assert {r.data.get("minutes") for r in records} == {30}
        assert await session.scalar(sa.select(sa.func.count()).select_from(ConsentSignature)) == 2
        pains = sorted(
            (a.data or {}).get("pain_score")
            for a in (await session.execute(sa.select(AssessmentRecord))).scalars()
        )
        assert pains == [3, 5]
        photos = (
            (
                await session.execute(
                    sa.select(Attachment).where(Attachment.purpose.in_(["before", "after"]))
                )
            )
            .scalars()
            .all()
        )
        first = next(r for r in records if str(r.appointment_id) == ids[0])
        assert [(p.record_id, p.purpose, p.size) for p in photos] == [
            (first.id, "before", len(photo))
        ]
