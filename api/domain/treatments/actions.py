"""The bedside writes by name, for adapters that replay named mutations (offline sync).

Each entry takes `(session, args, *, actor, idempotency_key=None, now=None)` with the
JSON arguments the PAD sent (ids as strings or ints), calls the one domain action, and
returns a small JSON result including the row's new `version`. Rules, access checks and
errors are those of the actions themselves.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor
from api.domain.treatments import appointments, queue, records
from api.errors import invalid

Action = Callable[..., Awaitable[dict[str, Any]]]


def _id(args: dict[str, Any], name: str) -> int:
    try:
        value = int(args[name])
    except (KeyError, TypeError, ValueError):
        raise invalid(name, f"缺少或无效的 {name} / missing or invalid {name}") from None
    if value <= 0:
        raise invalid(name, f"无效的 {name} / invalid {name}")
    return value


async def _check_in(
    session: AsyncSession,
    args: dict[str, Any],
    *,
    actor: Actor,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    appointment = await appointments.access_appointment(
        session, actor, _id(args, "appointmentId"), lock=True
    )
    entry = await queue.check_in(
        session, appointment, actor=actor, idempotency_key=idempotency_key, now=now
    )
    return {
        "queueEntryId": entry.id,
        "number": entry.number,
        "version": entry.version,
        "appointmentVersion": appointment.version,
    }


async def _call_next(
    session: AsyncSession,
    args: dict[str, Any],
    *,
    actor: Actor,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    entry = await queue.call_next(
        session,
        queue_key=str(args.get("queueKey", "")),
        actor=actor,
        idempotency_key=idempotency_key,
        now=now,
    )
    return {
        "queueEntryId": entry.id if entry else None,
        "version": entry.version if entry else None,
    }


async def _skip(
    session: AsyncSession,
    args: dict[str, Any],
    *,
    actor: Actor,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    entry = await queue.access_queue_entry(session, actor, _id(args, "queueEntryId"))
    entry = await queue.skip_entry(
        session, entry, actor=actor, expected_version=args.get("expectedVersion"), now=now
    )
    return {"queueEntryId": entry.id, "version": entry.version}


async def _start(
    session: AsyncSession,
    args: dict[str, Any],
    *,
    actor: Actor,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    appointment = await appointments.access_appointment(
        session, actor, _id(args, "appointmentId"), lock=True
    )
    record = await records.start_treatment(
        session, appointment, actor=actor, idempotency_key=idempotency_key, now=now
    )
    return {"recordId": record.id, "version": record.version}


async def _save_record(
    session: AsyncSession,
    args: dict[str, Any],
    *,
    actor: Actor,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    record = await records.access_record(session, actor, _id(args, "recordId"), lock=True)
    record = await records.save_treatment_record(
        session,
        record,
        args.get("data") or {},
        actor=actor,
        expected_version=args.get("expectedVersion"),
        idempotency_key=idempotency_key,
        now=now,
    )
    return {"recordId": record.id, "version": record.version}


async def _save_assessment(
    session: AsyncSession,
    args: dict[str, Any],
    *,
    actor: Actor,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    record = await records.access_record(session, actor, _id(args, "recordId"), lock=True)
    assessment = await records.save_assessment(
        session,
        record,
        args.get("data") or {},
        actor=actor,
        expected_version=args.get("expectedVersion"),
        idempotency_key=idempotency_key,
        now=now,
    )
    return {"assessmentId": assessment.id, "version": assessment.version}


async def _attach_photo(
    session: AsyncSession,
    args: dict[str, Any],
    *,
    actor: Actor,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    record = await records.access_record(session, actor, _id(args, "recordId"), lock=True)
    attachment = await records.attach_photo(
        session,
        record,
        str(args.get("attachmentKey", "")),
        phase=str(args.get("phase", "")),
        actor=actor,
        now=now,
    )
    return {"attachmentId": attachment.id, "recordVersion": record.version}


async def _sign_consent(
    session: AsyncSession,
    args: dict[str, Any],
    *,
    actor: Actor,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    record = await records.access_record(session, actor, _id(args, "recordId"), lock=True)
    signature = await records.sign_consent(
        session,
        record,
        consent_text_id=_id(args, "consentTextId"),
        text_sha256=str(args.get("textSha256", "")),
        signature_key=str(args.get("signatureKey", "")),
        signer_name=str(args.get("signerName", "")),
        actor=actor,
        idempotency_key=idempotency_key,
        now=now,
    )
    return {"signatureId": signature.id, "version": signature.version}


async def _archive(
    session: AsyncSession,
    args: dict[str, Any],
    *,
    actor: Actor,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    record = await records.access_record(session, actor, _id(args, "recordId"), lock=True)
    record = await records.archive_session(
        session, record, actor=actor, idempotency_key=idempotency_key, now=now
    )
    return {"recordId": record.id, "status": record.status, "version": record.version}


async def _cancel(
    session: AsyncSession,
    args: dict[str, Any],
    *,
    actor: Actor,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    appointment = await appointments.access_appointment(
        session, actor, _id(args, "appointmentId"), lock=True
    )
    appointment = await appointments.cancel_appointment(
        session,
        appointment,
        actor=actor,
        reason=args.get("reason"),
        idempotency_key=idempotency_key,
        now=now,
    )
    return {
        "appointmentId": appointment.id,
        "status": appointment.status,
        "version": appointment.version,
    }


BEDSIDE_ACTIONS: dict[str, Action] = {
    "checkIn": _check_in,
    "callNext": _call_next,
    "skipQueueEntry": _skip,
    "startTreatment": _start,
    "saveTreatmentRecord": _save_record,
    "saveAssessment": _save_assessment,
    "attachPhoto": _attach_photo,
    "signConsent": _sign_consent,
    "archiveTreatment": _archive,
    "cancelAppointment": _cancel,
}
