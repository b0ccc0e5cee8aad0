"""The waitlist (候补, FHIR `waitlist`): a full slot can be waited for; when a seat frees
up, the earliest waiting patient whose order still has a session gets it, booked and
notified in the same transaction as the cancellation that freed it.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor
from api.domain.treatments.appointments import (
    _channel,
    _notify,
    _order_for_booking,
    _receipt,
    _schedule_reminder,
    _take_seat,
    access_appointment,
)
from api.domain.treatments.common import HOSPITAL_TZ, is_staff, now_or, receipt_number, touch
from api.domain.treatments.orders import bookable_sessions
from api.errors import DomainError, ErrorCode
from api.idempotency import recall, remember
from api.models.people import Role
from api.models.treatments import (
    Appointment,
    AppointmentStatus,
    BookingChannel,
    Slot,
    TreatmentItem,
    TreatmentOrder,
)


async def join_waitlist(
    session: AsyncSession,
    slot_id: int,
    *,
    actor: Actor,
    order_id: int | None = None,
    channel: BookingChannel | str | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> Appointment:
    """Wait for a seat of a full slot. A slot with seats left is booked directly instead."""
    first = await recall(session, "treatments.waitlist", idempotency_key, actor=actor)
    if first:
        return await access_appointment(session, actor, int(first["appointment_id"]))
    now = now_or(now)
    if channel is None:
        channel = (
            BookingChannel.OFFICIAL_ACCOUNT
            if (actor.has_role(Role.PATIENT) and not is_staff(actor))
            else BookingChannel.ADMIN
        )
    order = await _order_for_booking(session, actor, slot_id, order_id)
    slot = await session.get(Slot, slot_id)
    if slot is None or slot.item_id != order.item_id:
        raise DomainError(ErrorCode.NOT_FOUND, "时段不存在 / slot not found", field="slotId")
    if slot.cancelled_at is not None or slot.starts_at <= now:
        raise DomainError(
            ErrorCode.CONFLICT, "该时段不可候补 / this slot cannot be waited for", field="slotId"
        )
    if slot.remaining > 0:
        raise DomainError(
            ErrorCode.CONFLICT,
            "该时段尚有余位，请直接预约 / seats are left, book directly",
            field="slotId",
        )
    waiting = (
        await session.execute(
            sa.select(Appointment.id).where(
                Appointment.slot_id == slot_id,
                Appointment.patient_id == order.patient_id,
                Appointment.status.in_(
                    [AppointmentStatus.WAITLIST.value, AppointmentStatus.BOOKED.value]
                ),
                Appointment.deleted_at.is_(None),
            )
        )
    ).first()
    if waiting:
        raise DomainError(
            ErrorCode.CONFLICT,
            "该患者已预约或候补此时段 / the patient already holds or waits for this slot",
            field="slotId",
        )
    appointment = Appointment(
        patient_id=order.patient_id,
        order_id=order.id,
        item_id=order.item_id,
        slot_id=slot.id,
        therapist_id=slot.therapist_id,
        room=slot.room,
        starts_at=slot.starts_at,
        ends_at=slot.ends_at,
        status=AppointmentStatus.WAITLIST,
        channel=_channel(channel),
        booked_by_id=actor.user_id or None,
        created_at=now,
        updated_at=now,
    )
    session.add(appointment)
    await session.flush()
    await remember(
        session,
        "treatments.waitlist",
        idempotency_key,
        {"appointment_id": appointment.id},
        actor=actor,
    )
    return appointment


async def promote_from_waitlist(
    session: AsyncSession, slot_id: int, *, now: datetime, tz: ZoneInfo = HOSPITAL_TZ
) -> Appointment | None:
    """Give a freed seat to the earliest waiting patient who can still use it."""
    candidates = (
        (
            await session.execute(
                sa.select(Appointment)
                .where(
                    Appointment.slot_id == slot_id,
                    Appointment.status == AppointmentStatus.WAITLIST,
                    Appointment.deleted_at.is_(None),
                )
                .order_by(Appointment.created_at, Appointment.id)
                .with_for_update(skip_locked=True)
            )
        )
        .scalars()
        .all()
    )
    for candidate in candidates:
        order = (
            await session.execute(
                sa.select(TreatmentOrder)
                .where(TreatmentOrder.id == candidate.order_id)
                .with_for_update()
            )
        ).scalar_one_or_none()
        if (
            order is None
            or order.cancelled_at is not None
            or await bookable_sessions(session, order) <= 0
        ):
            continue
        try:
            async with session.begin_nested():
                await _take_seat(session, slot_id, order.item_id, now)
        except DomainError:
            return None  # the seat is gone again (or the slot passed): everyone keeps waiting
        item = await session.get(TreatmentItem, candidate.item_id)
        assert item is not None and candidate.id is not None
        candidate.status = AppointmentStatus.BOOKED
        candidate.receipt_no = receipt_number(candidate.id, candidate.starts_at, tz)
        candidate.receipt = _receipt(candidate, item, order, tz)
        touch(candidate, now)
        await session.flush()
        await _notify(
            session,
            candidate,
            "appointment.booked",
            "候补成功，已为您预约 / a seat freed up: you are booked",
            item=item,
            tz=tz,
            extra={"receipt_no": candidate.receipt_no, "from_waitlist": True},
        )
        await _schedule_reminder(session, candidate, item, tz, now)
        return candidate
    return None
