"""Bedside treatment work on the PAD: the department's appointments and queue for a
window of days, treatment and assessment records, consent signatures; and the named
mutators that call `api.domain.treatments` exactly as the GraphQL resolvers do.

Records are addressed by appointment (one treatment record per appointment), so a PAD
can start a session, fill it in and sign the consent offline without knowing any id the
server will assign. The record's `data` fields merge field by field (`sync.merge`); an
edit to a record deleted on the server is rejected with RECORD_DELETED and never
brings it back.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Actor
from api.domain.treatments import appointments as appointment_domain
from api.domain.treatments import queue as queue_domain
from api.domain.treatments import records as record_domain
from api.domain.treatments.access import visible_patient_ids
from api.errors import DomainError, ErrorCode, not_found
from api.models.treatments import (
    Appointment,
    AssessmentRecord,
    ConsentSignature,
    QueueEntry,
    TreatmentItem,
    TreatmentRecord,
)
from api.services import Services
from sync import conflicts
from sync.attachments import AttachmentPending
from sync.merge import plan_merge
from sync.registry import MutationContext, Outcome, SyncEntity, entity, mutator

WINDOW_BEFORE = timedelta(days=1)
WINDOW_AFTER = timedelta(days=7)
RECORDS_KEPT = timedelta(days=30)


def _mine(
    actor: Actor, department_column: Any, therapist_column: Any, patient_column: Any
) -> sa.ColumnElement[bool]:
    """The department's work (or the therapist's own), of patients the actor may see."""
    mine = therapist_column == actor.user_id
    if actor.department_id is not None:
        mine = sa.or_(department_column == actor.department_id, mine)
    return sa.and_(mine, patient_column.in_(visible_patient_ids(actor)))


def appointment_scope(actor: Actor, now: datetime) -> sa.Select[Any]:
    return (
        sa.select(Appointment.id)
        .join(TreatmentItem, TreatmentItem.id == Appointment.item_id)
        .where(
            Appointment.deleted_at.is_(None),
            Appointment.starts_at >= now - WINDOW_BEFORE,
            Appointment.starts_at < now + WINDOW_AFTER,
            _mine(
                actor, TreatmentItem.department_id, Appointment.therapist_id, Appointment.patient_id
            ),
        )
    )


def record_scope(actor: Actor, now: datetime) -> sa.Select[Any]:
    return sa.select(TreatmentRecord.id).where(
        TreatmentRecord.deleted_at.is_(None),
        TreatmentRecord.created_at >= now - RECORDS_KEPT,
        _mine(
            actor,
            TreatmentRecord.department_id,
            TreatmentRecord.therapist_id,
            TreatmentRecord.patient_id,
        ),
    )


def assessment_scope(actor: Actor, now: datetime) -> sa.Select[Any]:
    return sa.select(AssessmentRecord.id).where(
        AssessmentRecord.deleted_at.is_(None),
        AssessmentRecord.record_id.in_(record_scope(actor, now)),
    )


def signature_scope(actor: Actor, now: datetime) -> sa.Select[Any]:
    return sa.select(ConsentSignature.id).where(
        ConsentSignature.deleted_at.is_(None),
        ConsentSignature.record_id.in_(record_scope(actor, now)),
    )


def queue_scope(actor: Actor, now: datetime) -> sa.Select[Any]:
    return sa.select(QueueEntry.id).where(
        QueueEntry.deleted_at.is_(None),
        QueueEntry.appointment_id.in_(appointment_scope(actor, now)),
    )


def as_json(row: Any, services: Services) -> dict[str, Any]:
    return row.model_dump(mode="json")


for _name, _model, _scope in (
    ("appointment", Appointment, appointment_scope),
    ("queue_entry", QueueEntry, queue_scope),
    ("treatment_record", TreatmentRecord, record_scope),
    ("assessment_record", AssessmentRecord, assessment_scope),
    ("consent_signature", ConsentSignature, signature_scope),
):
    entity(SyncEntity(name=_name, model=_model, scope=_scope, serialize=as_json))


async def _appointment(ctx: MutationContext, appointment_id: int) -> Appointment:
    appointment = await ctx.session.get(Appointment, appointment_id, with_for_update=True)
    if appointment is None:
        raise not_found("预约", "appointment")
    if appointment.deleted_at is not None:
        raise DomainError(
            ErrorCode.RECORD_DELETED,
            "该预约已在服务器删除 / the appointment was deleted on the server",
        )
    # the access rule of the domain, with the user's permissions as they are now
    return await appointment_domain.access_appointment(
        ctx.session, ctx.actor, appointment_id, lock=True
    )


async def _record(ctx: MutationContext, appointment_id: int) -> TreatmentRecord:
    """The appointment's treatment record, started (payment re-confirmed) if need be."""
    appointment = await _appointment(ctx, appointment_id)
    record = (
        await ctx.session.execute(
            sa.select(TreatmentRecord)
            .where(TreatmentRecord.appointment_id == appointment.id)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if record is None:
        return await record_domain.start_treatment(
            ctx.session, appointment, actor=ctx.actor, now=ctx.now
        )
    if record.deleted_at is not None:
        raise DomainError(
            ErrorCode.RECORD_DELETED,
            "该治疗记录已在服务器删除 / the treatment record was deleted on the server",
        )
    return await record_domain.access_record(ctx.session, ctx.actor, record.id, lock=True)


class AppointmentArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    appointmentId: int  # noqa: N815


class BookArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    slotId: int  # noqa: N815
    orderId: int | None = None  # noqa: N815


class DataEdit(BaseModel):
    """An edit of a record's template fields: what the device saw, what it wrote."""

    model_config = ConfigDict(extra="forbid")
    appointmentId: int  # noqa: N815
    baseVersion: int | None = None  # noqa: N815
    base: dict[str, Any] = Field(default_factory=dict)
    changes: dict[str, Any]


class ConsentArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    appointmentId: int  # noqa: N815
    consentTextId: int  # noqa: N815
    textSha256: str = Field(min_length=64, max_length=64)  # noqa: N815
    signatureSha256: str = Field(min_length=64, max_length=64)  # noqa: N815
    signerName: str = Field(default="", max_length=100)  # noqa: N815


@mutator("checkIn", AppointmentArgs)
async def check_in(ctx: MutationContext, args: AppointmentArgs) -> Outcome:
    appointment = await _appointment(ctx, args.appointmentId)
    entry = await queue_domain.check_in(
        ctx.session, appointment, actor=ctx.actor, idempotency_key=ctx.idempotency_key, now=ctx.now
    )
    return Outcome(entity="queue_entry", entity_id=entry.id, server=entry.model_dump(mode="json"))


@mutator("bookAppointment", BookArgs)
async def book_appointment(ctx: MutationContext, args: BookArgs) -> Outcome:
    # The domain writes the booking notice and the day-before reminder itself, keyed by
    # the appointment (and its start), and skips a reminder whose time has passed.
    appointment = await appointment_domain.book_appointment(
        ctx.session,
        args.slotId,
        actor=ctx.actor,
        order_id=args.orderId,
        idempotency_key=ctx.idempotency_key,
        now=ctx.now,
    )
    return Outcome(
        entity="appointment", entity_id=appointment.id, server=appointment.model_dump(mode="json")
    )


async def _merge_data(
    ctx: MutationContext, name: str, row: Any, args: DataEdit
) -> tuple[Any, dict[str, Any]]:
    current = dict(row.data or {}) if row is not None else {}
    moved = row is not None and args.baseVersion is not None and row.version != args.baseVersion
    plan = plan_merge(current, args.base, args.changes, {}, version_moved=moved)
    return plan, {**current, **plan.values}


@mutator("recordTreatment", DataEdit)
async def record_treatment(ctx: MutationContext, args: DataEdit) -> Outcome:
    record = await _record(ctx, args.appointmentId)
    plan, data = await _merge_data(ctx, "treatment_record", record, args)
    if plan.values:
        await record_domain.save_treatment_record(
            ctx.session,
            record,
            data,
            actor=ctx.actor,
            idempotency_key=ctx.idempotency_key,
            now=ctx.now,
        )
    await conflicts.record(ctx, "treatment_record", record.id, plan.conflicts)
    return Outcome(
        plan.status,
        "treatment_record",
        record.id,
        [c.as_dict() for c in plan.conflicts],
        record.model_dump(mode="json"),
    )


@mutator("saveAssessment", DataEdit)
async def save_assessment(ctx: MutationContext, args: DataEdit) -> Outcome:
    record = await _record(ctx, args.appointmentId)
    existing = (
        await ctx.session.execute(
            sa.select(AssessmentRecord)
            .where(AssessmentRecord.record_id == record.id)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if existing is not None and existing.deleted_at is not None:
        raise DomainError(
            ErrorCode.RECORD_DELETED,
            "该评估记录已在服务器删除 / the assessment was deleted on the server",
        )
    plan, data = await _merge_data(ctx, "assessment_record", existing, args)
    saved = existing
    if plan.values or existing is None:
        saved = await record_domain.save_assessment(
            ctx.session,
            record,
            data,
            actor=ctx.actor,
            idempotency_key=ctx.idempotency_key,
            now=ctx.now,
        )
    assert saved is not None
    await conflicts.record(ctx, "assessment_record", saved.id, plan.conflicts)
    return Outcome(
        plan.status,
        "assessment_record",
        saved.id,
        [c.as_dict() for c in plan.conflicts],
        saved.model_dump(mode="json"),
    )


@mutator("signConsent", ConsentArgs)
async def sign_consent(ctx: MutationContext, args: ConsentArgs) -> Outcome:
    uploads = await record_domain.uploads_of(ctx.session, args.signatureSha256)
    if not uploads:
        raise AttachmentPending(args.signatureSha256.lower())  # waits for the upload
    record = await _record(ctx, args.appointmentId)
    signature = record_domain.upload_for(record, uploads)
    signed = await record_domain.sign_consent(
        ctx.session,
        record,
        consent_text_id=args.consentTextId,
        text_sha256=args.textSha256,
        signature_key=signature.key,
        signer_name=args.signerName,
        actor=ctx.actor,
        idempotency_key=ctx.idempotency_key,
        now=ctx.now,
    )
    return Outcome(
        entity="consent_signature", entity_id=signed.id, server=signed.model_dump(mode="json")
    )


class PhotoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    appointmentId: int  # noqa: N815
    photoSha256: str = Field(min_length=64, max_length=64)  # noqa: N815
    phase: Literal["before", "after"] = "before"


@mutator("attachPhoto", PhotoArgs)
async def attach_photo(ctx: MutationContext, args: PhotoArgs) -> Outcome:
    """采集影像 from a PAD: the photo taken at the bedside (offline, perhaps) joins the
    session's record once its upload has finished; until then the mutation waits."""
    uploads = await record_domain.uploads_of(ctx.session, args.photoSha256)
    if not uploads:
        raise AttachmentPending(args.photoSha256.lower())  # waits for the upload
    record = await _record(ctx, args.appointmentId)
    photo = record_domain.upload_for(record, uploads)
    attached = await record_domain.attach_photo(
        ctx.session, record, photo.key, phase=args.phase, actor=ctx.actor, now=ctx.now
    )
    return Outcome(
        entity="treatment_record",
        entity_id=record.id,
        server={"attachmentId": attached.id, "phase": attached.purpose, "recordId": record.id},
    )


class RemovePhotoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    appointmentId: int  # noqa: N815
    photoSha256: str = Field(min_length=64, max_length=64)  # noqa: N815


@mutator("removePhoto", RemovePhotoArgs)
async def remove_photo(ctx: MutationContext, args: RemovePhotoArgs) -> Outcome:
    """A photo taken by mistake leaves the draft record; removing it again changes nothing."""
    record = await _record(ctx, args.appointmentId)
    removed = await record_domain.remove_photo(
        ctx.session, record, args.photoSha256, actor=ctx.actor, now=ctx.now
    )
    return Outcome(
        entity="treatment_record",
        entity_id=record.id,
        server={"recordId": record.id, "removed": removed.id if removed else None},
    )


@mutator("startTreatment", AppointmentArgs)
async def start_treatment(ctx: MutationContext, args: AppointmentArgs) -> Outcome:
    """开始治疗: payment re-confirmed and the draft record opened (once per appointment)."""
    record = await _record(ctx, args.appointmentId)
    return Outcome(
        entity="treatment_record", entity_id=record.id, server=record.model_dump(mode="json")
    )


@mutator("archiveTreatment", AppointmentArgs)
async def archive_treatment(ctx: MutationContext, args: AppointmentArgs) -> Outcome:
    """完成并归档: the appointment fulfilled and one session of the order used, exactly once
    (a replayed or repeated archive finds the record archived and counts nothing)."""
    record = await _record(ctx, args.appointmentId)
    archived = await record_domain.archive_session(
        ctx.session, record, actor=ctx.actor, idempotency_key=ctx.idempotency_key, now=ctx.now
    )
    return Outcome(
        entity="treatment_record", entity_id=archived.id, server=archived.model_dump(mode="json")
    )


@conflicts.writer("treatment_record")
async def write_record_field(
    session: Any, services: Services, actor: Actor, record_id: int, field: str, value: Any
) -> None:
    record = await record_domain.access_record(session, actor, record_id, lock=True)
    await record_domain.save_treatment_record(
        session, record, {**(record.data or {}), field: value}, actor=actor
    )


@conflicts.writer("assessment_record")
async def write_assessment_field(
    session: Any, services: Services, actor: Actor, assessment_id: int, field: str, value: Any
) -> None:
    assessment = await session.get(AssessmentRecord, assessment_id)
    if assessment is None or assessment.deleted_at is not None:
        raise not_found("评估记录", "assessment")
    record = await record_domain.access_record(session, actor, assessment.record_id, lock=True)
    await record_domain.save_assessment(
        session, record, {**(assessment.data or {}), field: value}, actor=actor
    )
