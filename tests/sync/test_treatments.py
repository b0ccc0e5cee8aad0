"""Treatment mutators from PADs: exactly once with one reminder, merged record fields,
edits to records deleted on the server, signatures that wait for their upload."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import sqlalchemy as sa

from api.models.audit import AuditEvent
from api.models.base import utcnow
from api.models.notices import Notice
from api.models.patients import Patient
from api.models.treatments import (
    Appointment,
    Attachment,
    ConsentText,
    TreatmentOrder,
    TreatmentRecord,
)
from tests.sync.client import pad
from tests.treatments.helpers import count, make_order, make_slot, png_bytes


async def _booked(http, demo, *, starts_in: timedelta) -> tuple[object, int]:
    order = await make_order(demo, "P0001", sessions=3)
    slot = await make_slot(demo, starts_in=starts_in)
    sun = await pad(http, "pt.sun")
    sun.mutate("bookAppointment", {"slotId": slot, "orderId": order})
    first = await sun.push(lose_ack=True)
    again = await sun.push()
    assert first["results"][0]["status"] == "APPLIED" and again["results"][0]["replayed"]
    return sun, first["results"][0]["entityId"]


async def test_lost_ack_booking_makes_one_appointment_and_one_reminder(http, demo):
    sun, appointment_id = await _booked(http, demo, starts_in=timedelta(days=3))
    assert await count(demo, Appointment) == 1
    assert await count(demo, Notice, Notice.kind == "appointment.reminder") == 1
    assert await count(demo, Notice, Notice.kind == "appointment.booked") == 1
    await sun.pull()
    assert sun.get("appointment", appointment_id)["status"] == "booked"


async def test_reminder_for_a_slot_already_close_is_suppressed(http, demo):
    await _booked(http, demo, starts_in=timedelta(minutes=30))
    assert await count(demo, Notice, Notice.kind == "appointment.reminder") == 0


async def test_record_treatment_exactly_once_and_fields_merge_across_pads(http, demo):
    sun, appointment_id = await _booked(http, demo, starts_in=timedelta(minutes=5))
    he = await pad(http, "chief.he")
    sun.mutate("checkIn", {"appointmentId": appointment_id})
    sun.mutate(
        "recordTreatment",
        {"appointmentId": appointment_id, "changes": {"modality": "中频 IF", "minutes": 20}},
    )
    await sun.push(lose_ack=True)
    await sun.push()
    assert await count(demo, TreatmentRecord) == 1
    await sun.pull()
    await he.pull()
    [record] = [v for (e, _), v in he.store.items() if e == "treatment_record"]
    base = {"minutes": 20, "reaction": None, "note": None}
    he.mutate(
        "recordTreatment",
        {
            "appointmentId": appointment_id,
            "baseVersion": record["version"],
            "base": base,
            "changes": {"minutes": 25},
        },
    )
    sun.mutate(
        "recordTreatment",
        {
            "appointmentId": appointment_id,
            "baseVersion": record["version"],
            "base": base,
            "changes": {"reaction": "无 none"},
        },
    )
    assert (await he.push())["results"][0]["status"] == "APPLIED"
    assert (await sun.push())["results"][0]["status"] == "MERGED"
    sun.mutate(
        "recordTreatment",
        {"appointmentId": appointment_id, "base": {"note": None}, "changes": {"note": "耐受良好"}},
    )
    he.mutate(
        "recordTreatment",
        {"appointmentId": appointment_id, "base": {"note": None}, "changes": {"note": "轻度酸胀"}},
    )
    await sun.push()
    raced = (await he.push())["results"][0]
    assert raced["status"] == "CONFLICT"
    await sun.pull()
    data = next(v for (e, _), v in sun.store.items() if e == "treatment_record")["data"]
    assert (data["modality"], data["minutes"], data["reaction"]) == ("中频 IF", 25, "无 none")
    assert data["note"] == max("耐受良好", "轻度酸胀", key=lambda v: f'"{v}"')
    assert len(await he.conflicts()) == 1


async def test_edit_to_a_record_deleted_on_the_server_does_not_bring_it_back(http, demo):
    sun, appointment_id = await _booked(http, demo, starts_in=timedelta(minutes=5))
    sun.mutate(
        "recordTreatment",
        {"appointmentId": appointment_id, "changes": {"modality": "超声 ultrasound"}},
    )
    await sun.push()
    await sun.pull()
    assert any(e == "treatment_record" for (e, _) in sun.store)
    async with demo.db.transaction() as session:  # voided at the nurses' station
        await session.execute(sa.update(TreatmentRecord).values(deleted_at=utcnow()))
    sun.mutate("recordTreatment", {"appointmentId": appointment_id, "changes": {"minutes": 30}})
    answer = await sun.push()
    assert (answer["results"][0]["status"], answer["results"][0]["code"]) == (
        "REJECTED",
        "RECORD_DELETED",
    )
    assert sun.outbox == []
    async with demo.db.session() as session:
        record = (await session.execute(sa.select(TreatmentRecord))).scalar_one()
        assert record.deleted_at is not None and record.data.get("minutes") is None
    await sun.pull()
    assert not any(e == "treatment_record" for (e, _) in sun.store)


async def test_signature_waits_for_its_resumable_upload(http, demo):
    sun, appointment_id = await _booked(http, demo, starts_in=timedelta(minutes=5))
    async with demo.db.session() as session:
        appointment = await session.get(Appointment, appointment_id)
        text = (
            await session.execute(
                sa.select(ConsentText).where(
                    ConsentText.item_id == appointment.item_id, ConsentText.is_current.is_(True)
                )
            )
        ).scalar_one()
    image = png_bytes("blue", (300, 200))
    digest = hashlib.sha256(image).hexdigest()
    sun.mutate(
        "signConsent",
        {
            "appointmentId": appointment_id,
            "consentTextId": text.id,
            "textSha256": text.sha256,
            "signatureSha256": digest,
            "signerName": "周建国",
        },
    )
    waiting = await sun.push()
    assert (waiting["results"][0]["status"], waiting["results"][0]["code"]) == (
        "PENDING",
        "ATTACHMENT_PENDING",
    )
    assert waiting["lastMutationId"] == 1 and len(sun.outbox) == 1  # the booking only
    headers = {
        "Authorization": f"Bearer {sun.token}",
        "Upload-Length": str(len(image)),
        "Content-Type": "image/png",
    }
    half = len(image) // 2
    first = await http.put(
        f"/sync/attachments/{digest}",
        content=image[:half],
        headers={**headers, "Upload-Offset": "0"},
    )
    assert first.status_code == 200 and first.json()["offset"] == half
    # the connection drops; the PAD asks where to resume
    head = await http.head(f"/sync/attachments/{digest}", headers=headers)
    assert head.headers["Upload-Offset"] == str(half)
    wrong = await http.put(
        f"/sync/attachments/{digest}",
        content=image[half:],
        headers={**headers, "Upload-Offset": "0"},
    )
    assert wrong.status_code == 409 and wrong.json()["offset"] == half
    done = await http.put(
        f"/sync/attachments/{digest}",
        content=image[half:],
        headers={**headers, "Upload-Offset": str(half)},
    )
    assert done.json()["complete"] is True
    signed = await sun.push()
    assert signed["results"][0]["status"] == "APPLIED" and sun.outbox == []


async def test_bedside_photos_join_the_record_once_uploaded(http, demo):
    sun, appointment_id = await _booked(http, demo, starts_in=timedelta(minutes=5))
    before, after = png_bytes("red", (320, 240)), png_bytes("green", (320, 240))
    digests = [hashlib.sha256(image).hexdigest() for image in (before, after)]
    sun.mutate(
        "attachPhoto",
        {"appointmentId": appointment_id, "photoSha256": digests[0], "phase": "before"},
    )
    sun.mutate(
        "attachPhoto",
        {"appointmentId": appointment_id, "photoSha256": digests[1], "phase": "after"},
    )
    waiting = await sun.push()
    assert (waiting["results"][0]["status"], waiting["results"][0]["code"]) == (
        "PENDING",
        "ATTACHMENT_PENDING",
    )
    assert len(sun.outbox) == 2  # nothing applied, nothing lost
    for image, digest in zip((before, after), digests, strict=True):
        headers = {
            "Authorization": f"Bearer {sun.token}",
            "Upload-Length": str(len(image)),
            "Upload-Offset": "0",
            "Content-Type": "image/png",
        }
        assert (
            await http.put(f"/sync/attachments/{digest}", content=image, headers=headers)
        ).json()["complete"] is True
    applied = await sun.push(lose_ack=True)  # the answer is lost: the PAD sends both again
    assert [r["status"] for r in applied["results"]] == ["APPLIED", "APPLIED"]
    again = await sun.push()
    assert all(r["replayed"] for r in again["results"]) and sun.outbox == []
    async with demo.db.session() as session:
        record = (
            await session.execute(
                sa.select(TreatmentRecord).where(TreatmentRecord.appointment_id == appointment_id)
            )
        ).scalar_one()
        photos = (
            (
                await session.execute(
                    sa.select(Attachment)
                    .where(Attachment.record_id == record.id)
                    .order_by(Attachment.id)
                )
            )
            .scalars()
            .all()
        )
    assert [(p.sha256, p.purpose) for p in photos] == [
        (digests[0], "before"),
        (digests[1], "after"),
    ]


async def test_a_photo_of_another_session_is_refused(http, demo):
    sun, first = await _booked(http, demo, starts_in=timedelta(minutes=5))
    _, second = await _booked(http, demo, starts_in=timedelta(minutes=5))
    image = png_bytes("red", (200, 200))
    digest = hashlib.sha256(image).hexdigest()
    headers = {
        "Authorization": f"Bearer {sun.token}",
        "Upload-Length": str(len(image)),
        "Upload-Offset": "0",
        "Content-Type": "image/png",
    }
    await http.put(f"/sync/attachments/{digest}", content=image, headers=headers)
    sun.mutate("attachPhoto", {"appointmentId": first, "photoSha256": digest})
    sun.mutate("attachPhoto", {"appointmentId": second, "photoSha256": digest})
    results = (await sun.push())["results"]
    assert results[0]["status"] == "APPLIED"
    assert (results[1]["status"], results[1]["code"]) == ("REJECTED", "CONFLICT")


async def test_a_pad_pulls_no_appointment_of_a_patient_it_may_not_see(http, demo):
    """A surgery patient booked (by the desk) into a rehabilitation therapist's slot: the
    therapist's PAD gets neither the appointment nor its queue entry, only its own."""
    _, mine = await _booked(http, demo, starts_in=timedelta(days=2))
    surgery_order = await make_order(demo, "P0002", sessions=1)
    slot = await make_slot(demo, starts_in=timedelta(days=2))
    desk = await pad(http, "admin")
    desk.mutate("bookAppointment", {"slotId": slot, "orderId": surgery_order})
    theirs = (await desk.push())["results"][0]
    assert theirs["status"] == "APPLIED"
    sun = await pad(http, "pt.sun")
    appointments = {key[1] for key in sun.store if key[0] == "appointment"}
    assert str(theirs["entityId"]) not in appointments and str(mine) in appointments
    async with demo.db.session() as session:
        surgery_patient = (
            await session.execute(sa.select(Patient.id).where(Patient.mrn == "P0002"))
        ).scalar_one()
    assert not [data for data in sun.store.values() if data.get("patient_id") == surgery_patient]
    assert sun.get("patient", surgery_patient) is None


async def _upload(http, pad_, image: bytes) -> str:
    digest = hashlib.sha256(image).hexdigest()
    headers = {
        "Authorization": f"Bearer {pad_.token}",
        "Upload-Length": str(len(image)),
        "Upload-Offset": "0",
        "Content-Type": "image/png",
    }
    done = await http.put(f"/sync/attachments/{digest}", content=image, headers=headers)
    assert done.json()["complete"] is True
    return digest


async def _order(demo, appointment_id: int) -> TreatmentOrder:
    async with demo.db.session() as session:
        appointment = await session.get(Appointment, appointment_id)
        order = await session.get(TreatmentOrder, appointment.order_id)
        assert order is not None
        return order


async def test_archive_from_a_pad_fulfils_the_appointment_and_counts_one_session(http, demo):
    """The whole session from a PAD: start, a photo taken by mistake and removed, consent,
    record, assessment, archive. The answer is lost and everything is sent again: the
    appointment is fulfilled and the order counts exactly one session, with history."""
    sun, appointment_id = await _booked(http, demo, starts_in=timedelta(minutes=5))
    assert (await _order(demo, appointment_id)).used_sessions == 0
    async with demo.db.session() as session:
        appointment = await session.get(Appointment, appointment_id)
        text = (
            await session.execute(
                sa.select(ConsentText).where(
                    ConsentText.item_id == appointment.item_id, ConsentText.is_current.is_(True)
                )
            )
        ).scalar_one()
    signature = await _upload(http, sun, png_bytes("blue", (300, 200)))
    wrong, kept = (
        await _upload(http, sun, png_bytes("red", (320, 240))),
        await _upload(http, sun, png_bytes("green", (320, 240))),
    )
    ref = {"appointmentId": appointment_id}
    sun.mutate("checkIn", ref)
    sun.mutate("startTreatment", ref)
    sun.mutate("attachPhoto", {**ref, "photoSha256": wrong, "phase": "before"})
    sun.mutate("attachPhoto", {**ref, "photoSha256": kept, "phase": "before"})
    sun.mutate("removePhoto", {**ref, "photoSha256": wrong})
    sun.mutate(
        "signConsent",
        {
            **ref,
            "consentTextId": text.id,
            "textSha256": text.sha256,
            "signatureSha256": signature,
            "signerName": "周建国",
        },
    )
    sun.mutate(
        "recordTreatment",
        {**ref, "changes": {"modality": "中频 IF", "minutes": 30, "reaction": "无 none"}},
    )
    sun.mutate("saveAssessment", {**ref, "changes": {"pain_score": 3}})
    sun.mutate("archiveTreatment", ref)
    first = await sun.push(lose_ack=True)
    assert [r["status"] for r in first["results"]][-1] == "APPLIED", first["results"][-1]
    again = await sun.push()
    assert all(r["replayed"] for r in again["results"]) and sun.outbox == []
    # An archive sent once more (a second tap, another PAD) counts nothing either.
    sun.mutate("archiveTreatment", ref)
    assert (await sun.push())["results"][0]["status"] == "APPLIED"

    order = await _order(demo, appointment_id)
    assert order.used_sessions == 1
    async with demo.db.session() as session:
        appointment = await session.get(Appointment, appointment_id)
        record = (
            await session.execute(
                sa.select(TreatmentRecord).where(TreatmentRecord.appointment_id == appointment_id)
            )
        ).scalar_one()
        photos = (
            (
                await session.execute(
                    sa.select(Attachment.sha256, Attachment.purpose)
                    .where(Attachment.record_id == record.id)
                    .order_by(Attachment.id)
                )
            )
            .tuples()
            .all()
        )
        history = (
            (
                await session.execute(
                    sa.select(AuditEvent.stream, AuditEvent.action).where(
                        AuditEvent.stream.in_(
                            [f"treatment_record:{record.id}", f"treatment_order:{order.id}"]
                        ),
                        AuditEvent.action.in_(["archived", "session_used", "photo_removed"]),
                    )
                )
            )
            .tuples()
            .all()
        )
    assert appointment.status == "fulfilled" and record.status == "archived"
    assert [(d, p) for d, p in photos if p != "signature"] == [
        (wrong, "removed"),
        (kept, "before"),
    ]
    assert sorted(k for _, k in history) == ["archived", "photo_removed", "session_used"]
    await sun.pull()
    assert sun.get("appointment", appointment_id)["status"] == "fulfilled"

    # After the archive the record no longer changes from a PAD, and the order stays.
    sun.mutate("recordTreatment", {**ref, "changes": {"minutes": 40}})
    refused = await sun.push()
    assert (refused["results"][0]["status"], refused["results"][0]["code"]) == (
        "REJECTED",
        "CONFLICT",
    )
    assert (await _order(demo, appointment_id)).used_sessions == 1


async def test_archive_of_an_unpaid_order_is_refused_and_counts_nothing(http, demo):
    sun, appointment_id = await _booked(http, demo, starts_in=timedelta(minutes=5))
    async with demo.db.transaction() as session:
        order = await session.get(TreatmentOrder, (await _order(demo, appointment_id)).id)
        order.payment_status = "refunded"
    sun.mutate("startTreatment", {"appointmentId": appointment_id})
    refused = await sun.push()
    assert (refused["results"][0]["status"], refused["results"][0]["code"]) == (
        "REJECTED",
        "NOT_PAID",
    )
    assert await count(demo, TreatmentRecord) == 0
    assert (await _order(demo, appointment_id)).used_sessions == 0
