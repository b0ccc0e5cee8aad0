"""The day's treatment queue (治疗队列) per room or therapist: check-in, call next, skip.

Check-in marks the appointment `arrived` (FHIR: waiting to be seen) and gives the patient
a ticket number; calling marks it `checked-in` (the encounter may begin). A skipped
patient (not there when called) goes to the end of the queue keeping their number.
"""

from __future__ import annotations

import zlib
from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor
from api.domain.treatments.access import access_queue, log_patient_access, visible_patient_ids
from api.domain.treatments.common import (
    HOSPITAL_TZ,
    check_version,
    local_day,
    now_or,
    require_treatment_staff,
    touch,
)
from api.errors import DomainError, ErrorCode, invalid
from api.idempotency import recall, remember
from api.models.treatments import Appointment, AppointmentStatus, QueueEntry


def queue_key_for(appointment: Appointment) -> str:
    if appointment.room:
        return f"room:{appointment.room}"
    return f"therapist:{appointment.therapist_id or 0}"


async def _lock_queue(session: AsyncSession, day: date, key: str) -> None:
    """Numbers and positions are per queue and day. Two desks changing one queue at the same
    moment would read the same maximum: on PostgreSQL a transaction lock on the queue orders
    them (SQLite has a single writer anyway); the unique constraint stays as the guard."""
    if session.bind.dialect.name == "postgresql":
        await session.execute(
            sa.select(sa.func.pg_advisory_xact_lock(zlib.crc32(f"queue:{day}:{key}".encode())))
        )


async def enqueue_arrival(
    session: AsyncSession, appointment: Appointment, *, now: datetime, tz: ZoneInfo = HOSPITAL_TZ
) -> QueueEntry:
    """Put an arrived appointment at the end of its queue (one entry per appointment)."""
    existing = (
        await session.execute(
            sa.select(QueueEntry).where(QueueEntry.appointment_id == appointment.id)
        )
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    day = local_day(now, tz)
    key = queue_key_for(appointment)
    await _lock_queue(session, day, key)
    top = (
        await session.execute(
            sa.select(sa.func.max(QueueEntry.number), sa.func.max(QueueEntry.position)).where(
                QueueEntry.queue_day == day, QueueEntry.queue_key == key
            )
        )
    ).one()
    entry = QueueEntry(
        appointment_id=appointment.id,  # type: ignore[arg-type]
        patient_id=appointment.patient_id,
        queue_day=day,
        queue_key=key,
        number=(top[0] or 0) + 1,
        position=(top[1] or 0) + 1,
        created_at=now,
        updated_at=now,
    )
    session.add(entry)
    await session.flush()
    return entry


async def check_in(
    session: AsyncSession,
    appointment: Appointment,
    *,
    actor: Actor,
    idempotency_key: str | None = None,
    now: datetime | None = None,
    tz: ZoneInfo = HOSPITAL_TZ,
) -> QueueEntry:
    """签到: the patient is here. Only a booked appointment of today can check in."""
    require_treatment_staff(actor)
    first = await recall(session, "treatments.check_in", idempotency_key, actor=actor)
    if first:  # the first answer, if the actor may still see its patient
        return await access_queue_entry(session, actor, int(first["entry_id"]))
    now = now_or(now)
    if appointment.status == AppointmentStatus.ARRIVED:
        return await enqueue_arrival(session, appointment, now=now, tz=tz)
    if appointment.status != AppointmentStatus.BOOKED:
        raise DomainError(
            ErrorCode.CONFLICT,
            f"当前状态不能签到 / cannot check in from status {appointment.status}",
            field="id",
        )
    if local_day(appointment.starts_at, tz) != local_day(now, tz):
        raise DomainError(
            ErrorCode.CONFLICT,
            "只能签到当天的预约 / only today's appointments can check in",
            field="id",
        )
    appointment.status = AppointmentStatus.ARRIVED
    touch(appointment, now)
    entry = await enqueue_arrival(session, appointment, now=now, tz=tz)
    await remember(
        session, "treatments.check_in", idempotency_key, {"entry_id": entry.id}, actor=actor
    )
    return entry


def _check_key(queue_key: str) -> None:
    if not queue_key or len(queue_key) > 80:
        raise invalid("queueKey", "队列无效 / invalid queue")


async def day_queue(
    session: AsyncSession, actor: Actor, *, day: date, queue_key: str, include_done: bool = False
) -> list[QueueEntry]:
    require_treatment_staff(actor)
    _check_key(queue_key)
    await access_queue(session, actor, queue_key)
    stmt = (
        sa.select(QueueEntry)
        .where(
            QueueEntry.queue_day == day,
            QueueEntry.queue_key == queue_key,
            QueueEntry.deleted_at.is_(None),
            QueueEntry.patient_id.in_(visible_patient_ids(actor)),
        )
        .order_by(QueueEntry.position)
    )
    if not include_done:
        stmt = stmt.where(QueueEntry.status.in_(["waiting", "called"]))
    entries = list((await session.execute(stmt)).scalars())
    await log_patient_access(
        session,
        actor,
        "queue",
        [e.patient_id for e in entries],
        detail={"queue": queue_key, "date": day.isoformat()},
    )
    return entries


async def call_next(
    session: AsyncSession,
    *,
    queue_key: str,
    actor: Actor,
    day: date | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
    tz: ZoneInfo = HOSPITAL_TZ,
) -> QueueEntry | None:
    """叫号: the first waiting entry becomes `called`; None when nobody waits."""
    require_treatment_staff(actor)
    _check_key(queue_key)
    await access_queue(session, actor, queue_key)
    first = await recall(session, "treatments.call_next", idempotency_key, actor=actor)
    if first:
        return await _called(
            session,
            actor,
            queue_key,
            await access_queue_entry(session, actor, int(first["entry_id"]))
            if first.get("entry_id")
            else None,
        )
    now = now_or(now)
    day = day or local_day(now, tz)
    entry = (
        await session.execute(
            sa.select(QueueEntry)
            .where(
                QueueEntry.queue_day == day,
                QueueEntry.queue_key == queue_key,
                QueueEntry.status == "waiting",
                QueueEntry.deleted_at.is_(None),
                QueueEntry.patient_id.in_(visible_patient_ids(actor)),
            )
            .order_by(QueueEntry.position)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
    ).scalar_one_or_none()
    if entry is not None:
        entry.status = "called"
        entry.called_at = now
        touch(entry, now)
        appointment = await session.get(Appointment, entry.appointment_id)
        if appointment is not None and appointment.status == AppointmentStatus.ARRIVED:
            appointment.status = AppointmentStatus.CHECKED_IN
            if appointment.therapist_id is None and actor.user_id:
                appointment.therapist_id = actor.user_id
            touch(appointment, now)
        await session.flush()
    await remember(
        session,
        "treatments.call_next",
        idempotency_key,
        {"entry_id": entry.id if entry else None},
        actor=actor,
    )
    return await _called(session, actor, queue_key, entry)


async def _called(
    session: AsyncSession, actor: Actor, queue_key: str, entry: QueueEntry | None
) -> QueueEntry | None:
    await log_patient_access(
        session,
        actor,
        "queue",
        [entry.patient_id] if entry else [],
        action="call",
        detail={"queue": queue_key, "entry_id": entry.id if entry else None},
    )
    return entry


async def skip_entry(
    session: AsyncSession,
    entry: QueueEntry,
    *,
    actor: Actor,
    expected_version: int | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> QueueEntry:
    """过号: not here when called; back to the end of the queue, same ticket number."""
    require_treatment_staff(actor)
    if await recall(session, "treatments.skip", idempotency_key, actor=actor):
        return entry  # a replayed skip moves nobody twice
    check_version(entry, expected_version)
    if entry.status not in ("waiting", "called"):
        raise DomainError(ErrorCode.CONFLICT, "该号已结束 / this ticket is closed", field="id")
    now = now_or(now)
    await _lock_queue(session, entry.queue_day, entry.queue_key)
    last = (
        await session.execute(
            sa.select(sa.func.max(QueueEntry.position)).where(
                QueueEntry.queue_day == entry.queue_day, QueueEntry.queue_key == entry.queue_key
            )
        )
    ).scalar_one()
    entry.position = (last or 0) + 1
    entry.status = "waiting"
    entry.skips += 1
    touch(entry, now)
    appointment = await session.get(Appointment, entry.appointment_id)
    if appointment is not None and appointment.status == AppointmentStatus.CHECKED_IN:
        appointment.status = AppointmentStatus.ARRIVED
        touch(appointment, now)
    await session.flush()
    await remember(
        session,
        "treatments.skip",
        idempotency_key,
        {"entry_id": entry.id, "version": entry.version},
        actor=actor,
    )
    return entry


async def access_queue_entry(session: AsyncSession, actor: Actor, entry_id: int) -> QueueEntry:
    require_treatment_staff(actor)
    entry = (
        await session.execute(
            sa.select(QueueEntry).where(
                QueueEntry.id == entry_id,
                QueueEntry.deleted_at.is_(None),
                QueueEntry.patient_id.in_(visible_patient_ids(actor)),
            )
        )
    ).scalar_one_or_none()
    if entry is None:
        raise DomainError(ErrorCode.NOT_FOUND, "排队记录不存在 / queue entry not found", field="id")
    return entry


async def finish_entry(session: AsyncSession, appointment_id: int, *, now: datetime) -> None:
    entry = (
        await session.execute(
            sa.select(QueueEntry).where(QueueEntry.appointment_id == appointment_id)
        )
    ).scalar_one_or_none()
    if entry is not None and entry.status != "done":
        entry.status = "done"
        touch(entry, now)
