"""Bedside execution on the PAD: 确费, photos, consent, treatment and assessment records,
then archiving the session so it counts against the course.

Each write is a named action `(session, record, ..., *, actor, idempotency_key=None,
now=None)` so offline-sync mutators call exactly these. PAD-edited rows carry `version`;
passing `expected_version` turns a stale edit into STALE_VERSION instead of a lost update.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.audit import append_event, canonical_json
from api.auth import Actor
from api.domain.treatments import templates
from api.domain.treatments.access import manages_item
from api.domain.treatments.common import (
    TreatmentErrorCode,
    check_version,
    load_patient,
    now_or,
    require_treatment_staff,
    touch,
)
from api.domain.treatments.followups import create_follow_ups
from api.domain.treatments.orders import (
    consume_session,
    course_orders,
    order_stream,
    remaining_sessions,
)
from api.domain.treatments.queue import finish_entry
from api.errors import DomainError, ErrorCode, invalid
from api.idempotency import recall, remember
from api.models.treatments import (
    Appointment,
    AppointmentStatus,
    AssessmentRecord,
    Attachment,
    ConsentSignature,
    ConsentText,
    PaymentStatus,
    TreatmentCourse,
    TreatmentItem,
    TreatmentOrder,
    TreatmentRecord,
)

PHOTO_PHASES = ("before", "after")
STARTABLE = (AppointmentStatus.BOOKED, AppointmentStatus.ARRIVED, AppointmentStatus.CHECKED_IN)


def record_stream(record_id: int) -> str:
    return f"treatment_record:{record_id}"


async def access_record(
    session: AsyncSession, actor: Actor, record_id: int, *, lock: bool = False
) -> TreatmentRecord:
    stmt = sa.select(TreatmentRecord).where(
        TreatmentRecord.id == record_id, TreatmentRecord.deleted_at.is_(None)
    )
    if lock:
        stmt = stmt.with_for_update()
    record = (await session.execute(stmt)).scalar_one_or_none()
    if record is None:
        raise DomainError(
            ErrorCode.NOT_FOUND, "治疗记录不存在 / treatment record not found", field="recordId"
        )
    await load_patient(session, actor, record.patient_id)
    return record


def _confirm_paid(order: TreatmentOrder) -> None:
    """再次确费: the HIS payment status stored on the order, checked at the bedside."""
    if order.payment_status != PaymentStatus.PAID:
        raise DomainError(
            ErrorCode.NOT_PAID,
            "该医嘱未缴费（或已退费），请患者缴费后再治疗 / the order is not paid (or was refunded); ask the patient to pay first",
            field="orderId",
            details={"paymentStatus": order.payment_status},
        )


async def start_treatment(
    session: AsyncSession,
    appointment: Appointment,
    *,
    actor: Actor,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> TreatmentRecord:
    """Begin the session: payment re-confirmed, a draft record opened. Unpaid: NOT_PAID,
    nothing written. Starting twice returns the same record."""
    require_treatment_staff(actor)
    await load_patient(session, actor, appointment.patient_id)
    first = await recall(session, "treatments.start", idempotency_key, actor=actor)
    if first:
        return await access_record(session, actor, int(first["record_id"]))
    existing = (
        await session.execute(
            sa.select(TreatmentRecord).where(TreatmentRecord.appointment_id == appointment.id)
        )
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    if appointment.status not in STARTABLE:
        raise DomainError(
            ErrorCode.CONFLICT,
            f"预约状态为 {appointment.status}，不能治疗 / cannot treat from status {appointment.status}",
            field="appointmentId",
        )
    if appointment.order_id is None:
        raise invalid("appointmentId", "该预约没有关联医嘱 / the appointment has no order")
    order = (
        await session.execute(
            sa.select(TreatmentOrder)
            .where(TreatmentOrder.id == appointment.order_id)
            .with_for_update()
        )
    ).scalar_one()
    if order.cancelled_at is not None:
        raise DomainError(
            ErrorCode.CONFLICT, "医嘱已撤销 / the order was cancelled", field="orderId"
        )
    _confirm_paid(order)
    if sum(remaining_sessions(o) for o in await course_orders(session, order)) <= 0:
        raise DomainError(
            TreatmentErrorCode.NO_SESSIONS_LEFT,
            "该医嘱的治疗次数已用完 / no sessions left on this order",
            field="orderId",
        )
    item = await session.get(TreatmentItem, appointment.item_id)
    assert item is not None
    now = now_or(now)
    record = TreatmentRecord(
        appointment_id=appointment.id,  # type: ignore[arg-type]
        order_id=order.id,  # type: ignore[arg-type]
        patient_id=appointment.patient_id,
        item_id=appointment.item_id,
        therapist_id=actor.user_id or appointment.therapist_id,
        department_id=item.department_id or actor.department_id,
        payment_confirmed_at=now,
        price_cents=item.price_cents,
        created_at=now,
        updated_at=now,
    )
    session.add(record)
    if appointment.status != AppointmentStatus.CHECKED_IN:
        appointment.status = AppointmentStatus.CHECKED_IN
    if appointment.therapist_id is None:
        appointment.therapist_id = actor.user_id or None
    touch(appointment, now)
    await session.flush()
    await remember(
        session, "treatments.start", idempotency_key, {"record_id": record.id}, actor=actor
    )
    return record


def _require_draft(record: TreatmentRecord) -> None:
    if record.status != "draft":
        raise DomainError(
            ErrorCode.CONFLICT,
            "记录已归档，不能修改 / the record is archived and cannot change",
            field="recordId",
        )


async def save_treatment_record(
    session: AsyncSession,
    record: TreatmentRecord,
    data: dict[str, Any],
    *,
    actor: Actor,
    expected_version: int | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> TreatmentRecord:
    """Save the treatment record's fields (a draft may be incomplete; types are checked)."""
    require_treatment_staff(actor)
    if await recall(session, "treatments.save_record", idempotency_key, actor=actor):
        return record
    _require_draft(record)
    check_version(record, expected_version)
    item = await session.get(TreatmentItem, record.item_id)
    assert item is not None
    record.data = templates.validate(item.record_template, data, prefix="data", partial=True)
    touch(record, now_or(now))
    await session.flush()
    await remember(
        session,
        "treatments.save_record",
        idempotency_key,
        {"record_id": record.id, "version": record.version},
        actor=actor,
    )
    return record


async def save_assessment(
    session: AsyncSession,
    record: TreatmentRecord,
    data: dict[str, Any],
    *,
    actor: Actor,
    expected_version: int | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> AssessmentRecord:
    """The assessment record (评估记录) from the item's assessment template."""
    require_treatment_staff(actor)
    now = now_or(now)
    existing = (
        await session.execute(
            sa.select(AssessmentRecord)
            .where(AssessmentRecord.record_id == record.id)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if existing is not None and await recall(
        session, "treatments.save_assessment", idempotency_key, actor=actor
    ):
        return existing
    _require_draft(record)
    item = await session.get(TreatmentItem, record.item_id)
    assert item is not None
    cleaned = templates.validate(item.assessment_template, data, prefix="data", partial=True)
    if existing is None:
        if expected_version not in (None, 0):
            check_version(_Missing(), expected_version)
        existing = AssessmentRecord(
            record_id=record.id,  # type: ignore[arg-type]
            patient_id=record.patient_id,
            data=cleaned,
            assessed_by_id=actor.user_id or None,
            created_at=now,
            updated_at=now,
        )
        session.add(existing)
    else:
        check_version(existing, expected_version)
        existing.data = cleaned
        existing.assessed_by_id = actor.user_id or None
        touch(existing, now)
    await session.flush()
    await remember(
        session,
        "treatments.save_assessment",
        idempotency_key,
        {"assessment_id": existing.id},
        actor=actor,
    )
    return existing


class _Missing:
    version = 0
    updated_at = None
    deleted_at = None


async def uploads_of(session: AsyncSession, sha256: str) -> list[Attachment]:
    """The stored uploads with these bytes (a PAD names its photos and signatures by hash),
    oldest first; empty while the upload has not finished."""
    stmt = (
        sa.select(Attachment)
        .where(Attachment.sha256 == sha256.lower(), Attachment.deleted_at.is_(None))
        .order_by(Attachment.id)
    )
    return list((await session.execute(stmt)).scalars())


def upload_for(record: TreatmentRecord, uploads: list[Attachment]) -> Attachment:
    """Which of the same bytes' uploads a record takes: its own copy, else a free one; one
    bound to another record is refused by `attach_photo` / `sign_consent` (CONFLICT)."""
    return next((a for a in uploads if a.record_id == record.id), None) or next(
        (a for a in uploads if a.record_id is None), uploads[0]
    )


async def _unbound_attachment(
    session: AsyncSession, attachment_key: str, record: TreatmentRecord
) -> Attachment:
    attachment = (
        await session.execute(
            sa.select(Attachment)
            .where(Attachment.key == attachment_key, Attachment.deleted_at.is_(None))
            .with_for_update()
        )
    ).scalar_one_or_none()
    if attachment is None:
        raise DomainError(
            ErrorCode.NOT_FOUND,
            "附件不存在，请先上传 / attachment not found, upload it first",
            field="attachmentKey",
        )
    if attachment.record_id is not None and attachment.record_id != record.id:
        raise DomainError(
            ErrorCode.CONFLICT,
            "附件已属于其他记录 / the attachment belongs to another record",
            field="attachmentKey",
        )
    return attachment


async def attach_photo(
    session: AsyncSession,
    record: TreatmentRecord,
    attachment_key: str,
    *,
    phase: str,
    actor: Actor,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> Attachment:
    """采集影像: bind an uploaded photo to the session as `before` or `after`. Binding the
    same photo the same way again is a no-op, so `idempotency_key` needs no record."""
    require_treatment_staff(actor)
    if phase not in PHOTO_PHASES:
        raise invalid("phase", "照片阶段须为 before/after / phase must be before or after")
    _require_draft(record)
    attachment = await _unbound_attachment(session, attachment_key, record)
    if attachment.record_id == record.id and attachment.purpose == phase:
        return attachment  # a replay (same key or not) changes nothing
    attachment.record_id = record.id
    attachment.purpose = phase
    touch(record, now_or(now))
    await session.flush()
    return attachment


async def remove_photo(
    session: AsyncSession,
    record: TreatmentRecord,
    sha256: str,
    *,
    actor: Actor,
    now: datetime | None = None,
) -> Attachment | None:
    """A photo taken by mistake leaves the draft record (kept, unbound, for the audit).
    Removing a photo no longer on the record changes nothing (a replay)."""
    require_treatment_staff(actor)
    _require_draft(record)
    photo = (
        await session.execute(
            sa.select(Attachment)
            .where(
                col(Attachment.record_id) == record.id,
                col(Attachment.sha256) == sha256.lower(),
                col(Attachment.purpose).in_(PHOTO_PHASES),
                col(Attachment.deleted_at).is_(None),
            )
            .with_for_update()
        )
    ).scalar_one_or_none()
    if photo is None:
        return None
    now = now_or(now)
    phase = photo.purpose
    photo.purpose = "removed"  # still the record's upload, no longer one of its photos
    touch(record, now)
    assert record.id is not None
    await append_event(
        session,
        record_stream(record.id),
        "photo_removed",
        actor=actor,
        at=now,
        data={"attachment_id": photo.id, "sha256": photo.sha256, "phase": phase},
    )
    await session.flush()
    return photo


async def current_consent_text(session: AsyncSession, item_id: int) -> ConsentText | None:
    stmt = (
        sa.select(ConsentText)
        .where(ConsentText.item_id == item_id, ConsentText.is_current.is_(True))
        .order_by(ConsentText.version.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def publish_consent_text(
    session: AsyncSession, item: TreatmentItem, *, title: str, body: str, actor: Actor
) -> ConsentText:
    """A new version of the item's consent form; earlier versions stop being signable."""
    require_treatment_staff(actor)
    if not manages_item(actor, item):
        raise DomainError(
            ErrorCode.NOT_FOUND, "治疗项目不存在 / treatment item not found", field="itemCode"
        )
    if not body.strip():
        raise invalid("body", "同意书内容不能为空 / the consent text is empty")
    latest = (
        await session.execute(
            sa.select(sa.func.max(ConsentText.version)).where(ConsentText.item_id == item.id)
        )
    ).scalar_one()
    await session.execute(
        sa.update(ConsentText).where(ConsentText.item_id == item.id).values(is_current=False)
    )
    text = ConsentText(
        item_id=item.id,  # type: ignore[arg-type]
        version=(latest or 0) + 1,
        title=title[:200],
        body=body,
        sha256=consent_text_sha256(title, body),
    )
    session.add(text)
    await session.flush()
    return text


def consent_text_sha256(title: str, body: str) -> str:
    return hashlib.sha256(f"{title}\n\n{body}".encode()).hexdigest()


async def sign_consent(
    session: AsyncSession,
    record: TreatmentRecord,
    *,
    consent_text_id: int,
    text_sha256: str,
    signature_key: str,
    actor: Actor,
    signer_name: str = "",
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> ConsentSignature:
    """The patient signs the consent form they were shown.

    The PAD sends the id and sha256 of the text it displayed. A signature against a text
    that is no longer current is refused (CONSENT_OUTDATED, with the current version in
    the error) and nothing is written: the patient must read and sign the current text.
    """
    require_treatment_staff(actor)
    first = await recall(session, "treatments.sign_consent", idempotency_key, actor=actor)
    if first:
        signature = await session.get(ConsentSignature, int(first["signature_id"]))
        assert signature is not None
        await access_record(session, actor, signature.record_id)  # still the actor's to see
        return signature
    _require_draft(record)
    text = await session.get(ConsentText, consent_text_id)
    if text is None or text.item_id != record.item_id:
        raise DomainError(
            ErrorCode.NOT_FOUND, "同意书不存在 / consent text not found", field="consentTextId"
        )
    if text.sha256 != text_sha256:
        raise invalid(
            "textSha256", "同意书内容摘要不符 / the consent text hash does not match the text"
        )
    current = await current_consent_text(session, record.item_id)
    if current is None or current.id != text.id:
        raise DomainError(
            TreatmentErrorCode.CONSENT_OUTDATED,
            "同意书已更新，请患者阅读并签署最新版本 / the consent text has changed; the patient must sign the current version",
            field="consentTextId",
            details={
                "currentConsentTextId": str(current.id) if current else None,
                "currentVersion": current.version if current else None,
                "signedVersion": text.version,
            },
        )
    attachment = await _unbound_attachment(session, signature_key, record)
    now = now_or(now)
    previous = (
        (
            await session.execute(
                sa.select(ConsentSignature).where(
                    ConsentSignature.record_id == record.id, ConsentSignature.deleted_at.is_(None)
                )
            )
        )
        .scalars()
        .all()
    )
    for old in previous:  # re-signing replaces the earlier signature, kept soft-deleted
        old.deleted_at = now
        touch(old, now)
    attachment.record_id = record.id
    attachment.purpose = "signature"
    signature = ConsentSignature(
        record_id=record.id,  # type: ignore[arg-type]
        patient_id=record.patient_id,
        consent_text_id=text.id,  # type: ignore[arg-type]
        text_sha256=text.sha256,
        signature_attachment_id=attachment.id,  # type: ignore[arg-type]
        signature_sha256=attachment.sha256,
        binding_sha256=hashlib.sha256(
            f"{text.sha256}:{attachment.sha256}:{record.id}".encode()
        ).hexdigest(),
        signer_name=signer_name[:100],
        signed_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(signature)
    await session.flush()
    await remember(
        session,
        "treatments.sign_consent",
        idempotency_key,
        {"signature_id": signature.id},
        actor=actor,
    )
    return signature


async def active_signature(session: AsyncSession, record_id: int) -> ConsentSignature | None:
    stmt = sa.select(ConsentSignature).where(
        ConsentSignature.record_id == record_id, ConsentSignature.deleted_at.is_(None)
    )
    return (await session.execute(stmt)).scalars().first()


async def archive_session(
    session: AsyncSession,
    record: TreatmentRecord,
    *,
    actor: Actor,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> TreatmentRecord:
    """归档: the complete record counts one session against the order, exactly once.

    Checks payment again, the consent signature (if the item requires one) and the
    required fields of both templates; then the appointment is fulfilled, the queue entry
    done, and follow-ups of the item's rule are created.
    """
    require_treatment_staff(actor)
    if record.status == "archived":
        return record  # a replayed archive changes nothing and counts nothing
    now = now_or(now)
    item = await session.get(TreatmentItem, record.item_id)
    order = (
        await session.execute(
            sa.select(TreatmentOrder).where(TreatmentOrder.id == record.order_id).with_for_update()
        )
    ).scalar_one()
    assert item is not None
    _confirm_paid(order)
    templates.validate(item.record_template, record.data, prefix="data")
    if item.assessment_template:
        assessment = (
            await session.execute(
                sa.select(AssessmentRecord).where(
                    AssessmentRecord.record_id == record.id, AssessmentRecord.deleted_at.is_(None)
                )
            )
        ).scalar_one_or_none()
        if assessment is None:
            raise invalid("assessment", "请先填写评估记录 / fill in the assessment first")
        templates.validate(item.assessment_template, assessment.data, prefix="assessment")
    if item.requires_consent and await active_signature(session, record.id) is None:  # type: ignore[arg-type]
        raise DomainError(
            TreatmentErrorCode.CONSENT_REQUIRED,
            "患者尚未签署知情同意书 / the patient has not signed the consent form",
            field="consent",
        )
    # The draft -> archived transition is one conditional UPDATE: of two racing archives
    # only one moves the row, so only one session is counted.
    moved = await session.execute(
        sa.update(TreatmentRecord)
        .where(TreatmentRecord.id == record.id, TreatmentRecord.status == "draft")
        .values(
            status="archived", archived_at=now, version=TreatmentRecord.version + 1, updated_at=now
        )
        .returning(TreatmentRecord.id)
    )
    if moved.scalar_one_or_none() is None:
        await session.refresh(record)
        return record
    await session.refresh(record)
    counted = await consume_session(session, order, now=now)
    appointment = await session.get(Appointment, record.appointment_id)
    assert appointment is not None
    appointment.status = AppointmentStatus.FULFILLED
    touch(appointment, now)
    await finish_entry(session, appointment.id, now=now)  # type: ignore[arg-type]
    assert record.id is not None
    await append_event(
        session,
        record_stream(record.id),
        "archived",
        actor=actor,
        at=now,
        data={
            "order_id": counted.id,
            "data_sha256": hashlib.sha256(canonical_json(record.data).encode()).hexdigest(),
            "used_sessions": counted.used_sessions,
        },
    )
    # The order's own history says which session counted it down, and what is left.
    await append_event(
        session,
        order_stream(counted.id),  # type: ignore[arg-type]
        "session_used",
        actor=actor,
        at=now,
        data={
            "record_id": record.id,
            "appointment_id": appointment.id,
            "used_sessions": counted.used_sessions,
            "remaining_sessions": remaining_sessions(counted),
        },
    )
    orders = await course_orders(session, order)
    course_done = all(remaining_sessions(o) == 0 for o in orders)
    if course_done and order.course_id is not None:
        course = await session.get(TreatmentCourse, order.course_id)
        if course is not None:
            course.completed_at = now
    await create_follow_ups(
        session, item=item, record=record, order=order, course_done=course_done, now=now
    )
    await remember(
        session, "treatments.archive", idempotency_key, {"record_id": record.id}, actor=actor
    )
    await session.flush()
    return record


async def records_for_patient(
    session: AsyncSession, patient_id: int, *, limit: int = 200
) -> list[TreatmentRecord]:
    stmt = (
        sa.select(TreatmentRecord)
        .where(TreatmentRecord.patient_id == patient_id, TreatmentRecord.deleted_at.is_(None))
        .order_by(TreatmentRecord.created_at.desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def record_photos(session: AsyncSession, record_id: int) -> list[Attachment]:
    stmt = (
        sa.select(Attachment)
        .where(
            col(Attachment.record_id) == record_id,
            col(Attachment.deleted_at).is_(None),
            col(Attachment.purpose).is_distinct_from("removed"),
        )
        .order_by(col(Attachment.id))
    )
    return list((await session.execute(stmt)).scalars())
