"""Appointments (预约): book, reschedule, cancel, recurring series, walk-ins, no-shows.

No overbooking: a seat is taken by one conditional UPDATE (`remaining = remaining - 1
WHERE remaining > 0`), so of any number of concurrent bookings of the last seat exactly
one wins; the order row is locked while its sessions are counted, so one order is never
booked beyond its sessions either.

Every booking writes a receipt (回执, with the item's notes) on the appointment and a
notice for the patient through the outbox, plus a day-before reminder whose payload
carries `deliver_after` for the notifications worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import SYSTEM_ACTOR, Actor
from api.domain.treatments.access import (
    access_staff_member,
    log_patient_access,
    visible_patient_rows_clause,
)
from api.domain.treatments.common import (
    HOSPITAL_TZ,
    TreatmentErrorCode,
    fmt_local,
    is_staff,
    load_patient,
    local_day_bounds,
    now_or,
    patient_of_actor,
    receipt_number,
    touch,
)
from api.domain.treatments.notices import enqueue_later
from api.domain.treatments.orders import access_order, bookable_sessions
from api.errors import DomainError, ErrorCode, forbidden, invalid
from api.idempotency import recall, remember
from api.models.patients import Patient
from api.models.people import Role
from api.models.treatments import (
    ACTIVE_STATUSES,
    Appointment,
    AppointmentSeries,
    AppointmentStatus,
    BookingChannel,
    PaymentStatus,
    Slot,
    TreatmentItem,
    TreatmentOrder,
)
from api.texts import split as split_text
from notifications import outbox

REMINDER_LEAD = timedelta(days=1)
NO_SHOW_GRACE = timedelta(minutes=30)
ACTIVE = [str(s) for s in ACTIVE_STATUSES]


def _channel(value: BookingChannel | str) -> BookingChannel:
    try:
        return BookingChannel(str(value))
    except ValueError:
        raise invalid("channel", "预约渠道无效 / unknown booking channel") from None


async def access_appointment(
    session: AsyncSession, actor: Actor, appointment_id: int, *, lock: bool = False
) -> Appointment:
    stmt = sa.select(Appointment).where(
        Appointment.id == appointment_id, Appointment.deleted_at.is_(None)
    )
    if lock:
        stmt = stmt.with_for_update()
    appointment = (await session.execute(stmt)).scalar_one_or_none()
    if appointment is None:
        raise DomainError(ErrorCode.NOT_FOUND, "预约不存在 / appointment not found", field="id")
    await load_patient(session, actor, appointment.patient_id)
    return appointment


async def _order_for_booking(
    session: AsyncSession, actor: Actor, slot_id: int, order_id: int | None
) -> TreatmentOrder:
    if order_id is None:
        slot = await session.get(Slot, slot_id)
        if slot is None:
            raise DomainError(ErrorCode.NOT_FOUND, "时段不存在 / slot not found", field="slotId")
        if not actor.has_role(Role.PATIENT) or is_staff(actor):
            raise invalid("orderId", "请选择治疗医嘱 / choose the order to book")
        # A patient booking from the Official Account: their open order for this item.
        patient = await patient_of_actor(session, actor)
        candidates = (
            (
                await session.execute(
                    sa.select(TreatmentOrder)
                    .where(
                        TreatmentOrder.patient_id == patient.id,
                        TreatmentOrder.item_id == slot.item_id,
                        TreatmentOrder.cancelled_at.is_(None),
                        TreatmentOrder.used_sessions < TreatmentOrder.sessions,
                    )
                    .order_by(TreatmentOrder.id)
                )
            )
            .scalars()
            .all()
        )
        for candidate in candidates:
            if await bookable_sessions(session, candidate) > 0:
                order_id = candidate.id
                break
        if order_id is None:
            raise DomainError(
                TreatmentErrorCode.NO_SESSIONS_LEFT,
                "没有可预约的治疗医嘱 / no open order for this treatment",
                field="orderId",
            )
    order = await access_order(session, actor, order_id, lock=True)
    if actor.has_role(Role.PATIENT) and not is_staff(actor):
        patient = await session.get(Patient, order.patient_id)
        if patient is None or patient.user_id != actor.user_id:
            raise forbidden("只能预约本人的医嘱 / you can book only your own orders")
    if order.cancelled_at is not None:
        raise DomainError(
            ErrorCode.CONFLICT, "医嘱已撤销 / the order was cancelled", field="orderId"
        )
    if order.payment_status == PaymentStatus.REFUNDED:
        raise DomainError(
            ErrorCode.NOT_PAID, "医嘱已退费，不能预约 / the order was refunded", field="orderId"
        )
    if await bookable_sessions(session, order) <= 0:
        raise DomainError(
            TreatmentErrorCode.NO_SESSIONS_LEFT,
            "该医嘱的次数已全部预约 / all sessions of this order are booked",
            field="orderId",
        )
    return order


async def _take_seat(
    session: AsyncSession, slot_id: int, item_id: int, now: datetime
) -> sa.Row[Any]:
    """The one statement that decides who gets the last seat; returns what the booking
    needs of the slot (id, times, therapist, room) without another round trip. Why it
    failed is looked up only when it did."""
    result = await session.execute(
        sa.update(Slot)
        .where(
            Slot.id == slot_id,
            Slot.item_id == item_id,
            Slot.remaining > 0,
            Slot.cancelled_at.is_(None),
            Slot.starts_at > now,
        )
        .values(remaining=Slot.remaining - 1)
        .returning(Slot.id, Slot.starts_at, Slot.ends_at, Slot.therapist_id, Slot.room)
        .execution_options(synchronize_session=False)
    )
    taken = result.first()
    if taken is None:
        slot = await session.get(Slot, slot_id)
        if slot is None:
            raise DomainError(ErrorCode.NOT_FOUND, "时段不存在 / slot not found", field="slotId")
        if slot.item_id != item_id:
            raise invalid("slotId", "时段与医嘱的治疗项目不符 / the slot is for another treatment")
        if slot.cancelled_at is not None:
            raise DomainError(
                ErrorCode.CONFLICT, "该时段已停诊 / the slot was withdrawn", field="slotId"
            )
        if slot.starts_at <= now:
            raise DomainError(
                TreatmentErrorCode.SLOT_PASSED, "该时段已过 / the slot has passed", field="slotId"
            )
        raise DomainError(
            ErrorCode.FULLY_BOOKED, "该时段已约满 / the slot is fully booked", field="slotId"
        )
    return taken


async def _release_seat(session: AsyncSession, slot_id: int | None) -> None:
    if slot_id is None:
        return
    await session.execute(
        sa.update(Slot)
        .where(Slot.id == slot_id, Slot.remaining < Slot.capacity)
        .values(remaining=Slot.remaining + 1)
    )


def _receipt(
    appointment: Appointment, item: TreatmentItem, order: TreatmentOrder, tz: ZoneInfo
) -> dict[str, Any]:
    lines = [
        f"治疗项目 / Treatment: {item.name} {item.name_en}".strip(),
        f"时间 / Time: {fmt_local(appointment.starts_at, tz)}",
    ]
    if appointment.room:
        lines.append(f"治疗室 / Room: {appointment.room}")
    if order.payment_status != PaymentStatus.PAID:
        lines.append("请先缴费后再治疗 / please pay before the treatment")
    return {
        "no": appointment.receipt_no,
        "item": item.code,
        "starts_at": appointment.starts_at.isoformat(),
        "room": appointment.room,
        "notes": item.notes,
        "text": "\n".join(lines + ([f"注意事项 / Notes: {item.notes}"] if item.notes else [])),
    }


async def _notify(
    session: AsyncSession,
    appointment: Appointment,
    kind: str,
    title: str,
    *,
    item: TreatmentItem,
    tz: ZoneInfo,
    extra: dict[str, Any] | None = None,
) -> None:
    """The patient's notice (if the patient has an account to receive it)."""
    patient = await session.get(Patient, appointment.patient_id)
    if patient is None or patient.user_id is None:
        return
    assert appointment.id is not None
    body = f"{item.name} {fmt_local(appointment.starts_at, tz)}"
    if kind == "appointment.booked" and item.notes:
        body += f"\n注意事项 / Notes: {item.notes}"
    # Each language whole: item data is itself "中文 / English".
    when = fmt_local(appointment.starts_at, tz)
    zh = [f"{item.name} {when}"]
    en = [f"{item.name_en or item.name} {when}"]
    if kind == "appointment.booked":
        if appointment.room:
            zh.append(f"治疗室：{appointment.room}")
            en.append(f"Room: {appointment.room}")
        if item.location:
            zh.append(f"怎么走：{split_text(item.location).zh}")
            en.append(f"How to get there: {split_text(item.location).en}")
        if item.notes:
            zh.append(f"注意事项：{split_text(item.notes).zh}")
            en.append(f"Notes: {split_text(item.notes).en}")
    titles = split_text(title)
    await outbox.enqueue(
        session,
        recipient_id=patient.user_id,
        kind=kind,
        title=title,
        body=body,
        texts=outbox.NoticeTexts(
            titles.zh, titles.en, body_zh="\n".join(zh)[:2000], body_en="\n".join(en)[:2000]
        ),
        idempotency_key=f"{kind}:{appointment.id}:v{appointment.version}",
        payload={
            "appointment_id": appointment.id,
            "item": item.code,
            "starts_at": appointment.starts_at.isoformat(),
            **(extra or {}),
        },
        subject_type="appointment",
        subject_id=appointment.id,
    )


async def _schedule_reminder(
    session: AsyncSession,
    appointment: Appointment,
    item: TreatmentItem,
    tz: ZoneInfo,
    now: datetime,
) -> None:
    """A day-before reminder, written now as data; the worker delivers after `deliver_after`."""
    deliver_after = appointment.starts_at - REMINDER_LEAD
    if deliver_after <= now:
        return
    patient = await session.get(Patient, appointment.patient_id)
    if patient is None or patient.user_id is None:
        return
    await enqueue_later(
        session,
        deliver_after=deliver_after,
        recipient_id=patient.user_id,
        kind="appointment.reminder",
        title="治疗预约提醒 / treatment reminder",
        body=f"{item.name} {fmt_local(appointment.starts_at, tz)}"
        + (f"\n注意事项 / Notes: {item.notes}" if item.notes else ""),
        idempotency_key=f"appointment.reminder:{appointment.id}:{appointment.starts_at.isoformat()}",
        payload={"appointment_id": appointment.id, "starts_at": appointment.starts_at.isoformat()},
        subject_type="appointment",
        subject_id=appointment.id,
    )


async def _place(
    session: AsyncSession,
    order: TreatmentOrder,
    slot_id: int,
    *,
    actor: Actor,
    channel: BookingChannel,
    now: datetime,
    tz: ZoneInfo,
    series_id: int | None = None,
    rescheduled_from_id: int | None = None,
    notify: bool = True,
) -> Appointment:
    duplicate = (
        await session.execute(
            sa.select(Appointment.id).where(
                Appointment.slot_id == slot_id,
                Appointment.patient_id == order.patient_id,
                Appointment.status.in_(ACTIVE),
                Appointment.deleted_at.is_(None),
            )
        )
    ).first()
    if duplicate:
        raise DomainError(
            ErrorCode.CONFLICT,
            "该患者已预约此时段 / the patient already holds this slot",
            field="slotId",
        )
    slot = await _take_seat(session, slot_id, order.item_id, now)
    item = await session.get(TreatmentItem, order.item_id)
    assert item is not None
    appointment = Appointment(
        patient_id=order.patient_id,
        order_id=order.id,
        item_id=order.item_id,
        slot_id=slot.id,
        series_id=series_id,
        therapist_id=slot.therapist_id,
        room=slot.room,
        starts_at=slot.starts_at.astimezone(UTC),
        ends_at=slot.ends_at.astimezone(UTC),
        status=AppointmentStatus.BOOKED,
        channel=channel,
        booked_by_id=actor.user_id or None,
        rescheduled_from_id=rescheduled_from_id,
        created_at=now,
        updated_at=now,
    )
    session.add(appointment)
    await session.flush()
    assert appointment.id is not None
    appointment.receipt_no = receipt_number(appointment.id, appointment.starts_at, tz)
    appointment.receipt = _receipt(appointment, item, order, tz)
    await session.flush()
    if notify:
        await _notify(
            session,
            appointment,
            "appointment.booked",
            "治疗预约成功 / treatment booked",
            item=item,
            tz=tz,
            extra={"receipt_no": appointment.receipt_no},
        )
    await _schedule_reminder(session, appointment, item, tz, now)
    return appointment


async def book_appointment(
    session: AsyncSession,
    slot_id: int,
    *,
    actor: Actor,
    order_id: int | None = None,
    channel: BookingChannel | str | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
    tz: ZoneInfo = HOSPITAL_TZ,
) -> Appointment:
    """Book one seat of `slot_id` for an order (a patient may omit the order)."""
    first = await recall(session, "treatments.book", idempotency_key, actor=actor)
    if first:
        return await _booked(
            session, actor, await access_appointment(session, actor, int(first["appointment_id"]))
        )
    now = now_or(now)
    if channel is None:
        channel = (
            BookingChannel.OFFICIAL_ACCOUNT
            if (actor.has_role(Role.PATIENT) and not is_staff(actor))
            else BookingChannel.ADMIN
        )
    chosen = _channel(channel)
    order = await _order_for_booking(session, actor, slot_id, order_id)
    appointment = await _place(session, order, slot_id, actor=actor, channel=chosen, now=now, tz=tz)
    await remember(
        session, "treatments.book", idempotency_key, {"appointment_id": appointment.id}, actor=actor
    )
    return await _booked(session, actor, appointment)


async def _booked(session: AsyncSession, actor: Actor, appointment: Appointment) -> Appointment:
    await log_patient_access(
        session,
        actor,
        "appointment",
        [appointment.patient_id],
        action="book",
        detail={"appointment_id": appointment.id},
    )
    return appointment


def _may_change(actor: Actor, appointment: Appointment, patient: Patient) -> None:
    if is_staff(actor):
        return
    if actor.has_role(Role.PATIENT) and patient.user_id == actor.user_id:
        return
    raise forbidden("无权修改该预约 / not allowed to change this appointment")


async def cancel_appointment(
    session: AsyncSession,
    appointment: Appointment,
    *,
    actor: Actor,
    reason: str | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
    tz: ZoneInfo = HOSPITAL_TZ,
    notify: bool = True,
) -> Appointment:
    """Cancel a booked appointment; the seat goes back to the slot. Repeating is a no-op."""
    if appointment.status == AppointmentStatus.CANCELLED:
        return appointment
    patient = await session.get(Patient, appointment.patient_id)
    assert patient is not None
    _may_change(actor, appointment, patient)
    if appointment.status not in (
        AppointmentStatus.BOOKED,
        AppointmentStatus.PROPOSED,
        AppointmentStatus.WAITLIST,
    ):
        raise DomainError(
            ErrorCode.CONFLICT,
            "该预约已到诊或已结束，不能取消 / the appointment has started or ended",
            field="id",
        )
    now = now_or(now)
    if appointment.starts_at <= now and not is_staff(actor):
        # After the start only the desk can cancel (the patient may be on the way in).
        raise DomainError(
            ErrorCode.CONFLICT,
            "预约时间已到，请联系治疗室取消 / the appointment has begun; ask the desk to cancel",
            field="id",
        )
    was_booked = appointment.status == AppointmentStatus.BOOKED
    appointment.status = AppointmentStatus.CANCELLED
    appointment.cancel_reason = (reason or "")[:200] or None
    touch(appointment, now)
    if was_booked:
        await _release_seat(session, appointment.slot_id)
    await session.flush()
    if was_booked and appointment.slot_id is not None:
        from api.domain.treatments.waitlist import promote_from_waitlist

        await promote_from_waitlist(session, appointment.slot_id, now=now, tz=tz)
    assert appointment.id is not None
    await outbox.cancel_for_subject(
        session, "appointment", appointment.id, kinds=["appointment.reminder"]
    )
    if notify:
        item = await session.get(TreatmentItem, appointment.item_id)
        assert item is not None
        await _notify(
            session,
            appointment,
            "appointment.cancelled",
            "治疗预约已取消 / appointment cancelled",
            item=item,
            tz=tz,
        )
    await remember(
        session,
        "treatments.cancel",
        idempotency_key,
        {"appointment_id": appointment.id},
        actor=actor,
    )
    return appointment


async def reschedule_appointment(
    session: AsyncSession,
    appointment: Appointment,
    new_slot_id: int,
    *,
    actor: Actor,
    idempotency_key: str | None = None,
    now: datetime | None = None,
    tz: ZoneInfo = HOSPITAL_TZ,
) -> Appointment:
    """Move to another slot of the same item: the new seat is taken before the old is freed,
    so a failed move leaves the patient where they were."""
    first = await recall(session, "treatments.reschedule", idempotency_key, actor=actor)
    if first:
        return await access_appointment(session, actor, int(first["appointment_id"]))
    if appointment.status != AppointmentStatus.BOOKED or appointment.order_id is None:
        raise DomainError(
            ErrorCode.CONFLICT,
            "只有已预约状态可改约 / only booked appointments can be moved",
            field="id",
        )
    patient = await session.get(Patient, appointment.patient_id)
    assert patient is not None
    _may_change(actor, appointment, patient)
    slot = await session.get(Slot, new_slot_id)
    if slot is None:
        raise DomainError(ErrorCode.NOT_FOUND, "时段不存在 / slot not found", field="slotId")
    if slot.item_id != appointment.item_id:
        raise invalid("slotId", "时段与预约的治疗项目不符 / the slot is for another treatment")
    now = now_or(now)
    order = await access_order(session, actor, appointment.order_id, lock=True)
    new = await _place(
        session,
        order,
        new_slot_id,
        actor=actor,
        channel=_channel(appointment.channel),
        now=now,
        tz=tz,
        rescheduled_from_id=appointment.id,
        notify=False,
    )
    await cancel_appointment(
        session, appointment, actor=actor, reason="改约 / rescheduled", now=now, tz=tz, notify=False
    )
    item = await session.get(TreatmentItem, new.item_id)
    assert item is not None
    await _notify(
        session,
        new,
        "appointment.rescheduled",
        "治疗预约已改期 / appointment rescheduled",
        item=item,
        tz=tz,
        extra={"from": appointment.starts_at.isoformat(), "receipt_no": new.receipt_no},
    )
    await remember(
        session, "treatments.reschedule", idempotency_key, {"appointment_id": new.id}, actor=actor
    )
    return new


@dataclass
class SeriesResult:
    series: AppointmentSeries
    appointments: list[Appointment]
    unplaced: list[dict[str, Any]] = field(default_factory=list)


async def book_series(
    session: AsyncSession,
    order: TreatmentOrder,
    *,
    start: date,
    at: str,
    sessions: int,
    actor: Actor,
    weekdays: list[int] | None = None,
    channel: BookingChannel | str = BookingChannel.ADMIN,
    max_days: int = 60,
    idempotency_key: str | None = None,
    now: datetime | None = None,
    tz: ZoneInfo = HOSPITAL_TZ,
) -> SeriesResult:
    """Book `sessions` appointments at `at` (local HH:MM) on the given weekdays from `start`.

    Each matching day with no open slot at that time is listed in `unplaced` with the
    reason; booking continues until the sessions are placed or `max_days` have passed,
    and whatever is not placed is listed too.
    """
    if not is_staff(actor):
        raise forbidden("仅工作人员可批量预约 / only staff can book a series")
    first = await recall(session, "treatments.book_series", idempotency_key, actor=actor)
    if first:
        result = await _series_result(session, int(first["series_id"]))
        await access_order(session, actor, result.series.order_id)  # still the actor's to see
        return result
    if not 1 <= sessions <= 100:
        raise invalid("sessions", "次数须在 1-100 之间 / sessions must be 1-100")
    days_of_week = sorted(set(weekdays if weekdays is not None else [0, 1, 2, 3, 4]))
    if not days_of_week or any(d not in range(7) for d in days_of_week):
        raise invalid("weekdays", "工作日须为 0-6（周一为 0）/ weekdays are 0-6, Monday = 0")
    try:
        hour, minute = (int(p) for p in at.split(":"))
        wanted_time = time(hour, minute)
    except (ValueError, TypeError):
        raise invalid("at", "时间格式应为 HH:MM / time must be HH:MM") from None
    now = now_or(now)
    assert order.id is not None
    order = await access_order(session, actor, order.id, lock=True)
    chosen = _channel(channel)
    available = await bookable_sessions(session, order)
    series = AppointmentSeries(
        order_id=order.id,
        rule={"weekdays": days_of_week, "at": at, "start": start.isoformat(), "sessions": sessions},
        requested=sessions,
        placed=0,
        created_by_id=actor.user_id or None,
    )
    session.add(series)
    await session.flush()
    placed: list[Appointment] = []
    unplaced: list[dict[str, Any]] = []
    if available < sessions:
        unplaced.append(
            {
                "date": None,
                "reason": f"医嘱仅剩 {max(available, 0)} 次可预约 / only {max(available, 0)} sessions left on the order",
            }
        )
    target = min(sessions, max(available, 0))
    day = start
    while len(placed) < target and (day - start).days < max_days:
        if day.weekday() in days_of_week:
            starts_at = datetime.combine(day, wanted_time, tzinfo=tz)
            slot_id = (
                await session.execute(
                    sa.select(Slot.id)
                    .where(
                        Slot.item_id == order.item_id,
                        Slot.starts_at == starts_at,
                        Slot.cancelled_at.is_(None),
                        Slot.remaining > 0,
                    )
                    .order_by(Slot.id)
                    .limit(1)
                )
            ).scalar_one_or_none()
            reason = None
            if starts_at <= now:
                reason = "时间已过 / in the past"
            elif slot_id is None:
                reason = (
                    "无可用时段（休息日、停诊或已约满）/ no open slot (day off, withdrawn or full)"
                )
            else:
                try:
                    async with session.begin_nested():
                        placed.append(
                            await _place(
                                session,
                                order,
                                slot_id,
                                actor=actor,
                                channel=chosen,
                                now=now,
                                tz=tz,
                                series_id=series.id,
                                notify=False,
                            )
                        )
                except DomainError as exc:
                    reason = exc.message
            if reason:
                unplaced.append({"date": day.isoformat(), "reason": reason})
        day += timedelta(days=1)
    missing = target - len(placed)
    if missing > 0:
        unplaced.append(
            {
                "date": None,
                "reason": f"{max_days} 天内还有 {missing} 次未能安排 / {missing} sessions not placed within {max_days} days",
            }
        )
    for appointment in placed:
        appointment.series_id = series.id
    series.placed = len(placed)
    series.unplaced = unplaced
    await session.flush()
    if placed:
        item = await session.get(TreatmentItem, order.item_id)
        assert item is not None
        await _notify(
            session,
            placed[0],
            "appointment.booked",
            "治疗疗程预约成功 / treatment course booked",
            item=item,
            tz=tz,
            extra={"series_id": series.id, "sessions": [a.starts_at.isoformat() for a in placed]},
        )
    await remember(
        session, "treatments.book_series", idempotency_key, {"series_id": series.id}, actor=actor
    )
    return SeriesResult(series, placed, unplaced)


async def _series_result(session: AsyncSession, series_id: int) -> SeriesResult:
    series = await session.get(AppointmentSeries, series_id)
    assert series is not None
    placed = (
        (
            await session.execute(
                sa.select(Appointment)
                .where(Appointment.series_id == series_id)
                .order_by(Appointment.starts_at)
            )
        )
        .scalars()
        .all()
    )
    return SeriesResult(series, list(placed), list(series.unplaced))


async def register_walk_in(
    session: AsyncSession,
    order: TreatmentOrder,
    *,
    actor: Actor,
    room: str = "",
    idempotency_key: str | None = None,
    now: datetime | None = None,
    tz: ZoneInfo = HOSPITAL_TZ,
) -> Appointment:
    """A patient treated without an appointment (随治随走): an arrived appointment, no slot."""
    from api.domain.treatments.queue import enqueue_arrival

    first = await recall(session, "treatments.walk_in", idempotency_key, actor=actor)
    if first:
        return await access_appointment(session, actor, int(first["appointment_id"]))
    if not is_staff(actor):
        raise forbidden("仅工作人员可登记未预约患者 / only staff can register a walk-in")
    now = now_or(now)
    assert order.id is not None
    order = await access_order(session, actor, order.id, lock=True)
    if order.cancelled_at is not None:
        raise DomainError(
            ErrorCode.CONFLICT, "医嘱已撤销 / the order was cancelled", field="orderId"
        )
    if await bookable_sessions(session, order) <= 0:
        raise DomainError(
            TreatmentErrorCode.NO_SESSIONS_LEFT,
            "该医嘱没有剩余次数 / no sessions left on this order",
            field="orderId",
        )
    item = await session.get(TreatmentItem, order.item_id)
    assert item is not None
    appointment = Appointment(
        patient_id=order.patient_id,
        order_id=order.id,
        item_id=order.item_id,
        therapist_id=actor.user_id or None,
        room=room[:60],
        starts_at=now,
        ends_at=now + timedelta(minutes=item.duration_minutes),
        status=AppointmentStatus.ARRIVED,
        channel=BookingChannel.WALK_IN,
        walk_in=True,
        booked_by_id=actor.user_id or None,
        created_at=now,
        updated_at=now,
    )
    session.add(appointment)
    await session.flush()
    assert appointment.id is not None
    appointment.receipt_no = receipt_number(appointment.id, now, tz)
    appointment.receipt = _receipt(appointment, item, order, tz)
    await enqueue_arrival(session, appointment, now=now, tz=tz)
    await remember(
        session,
        "treatments.walk_in",
        idempotency_key,
        {"appointment_id": appointment.id},
        actor=actor,
    )
    return appointment


async def mark_no_shows(
    session: AsyncSession,
    *,
    now: datetime | None = None,
    grace: timedelta = NO_SHOW_GRACE,
    actor: Actor = SYSTEM_ACTOR,
) -> list[Appointment]:
    """Booked appointments whose slot ended more than `grace` ago become `noshow`; waitlist
    entries of slots that have begun are closed (cancelled, reason given).

    The worker calls this periodically; tests inject `now`. Running it twice marks nothing
    new. A no-show does not count against the order: the session can be booked again.
    """
    now = now_or(now)
    await session.execute(
        sa.update(Appointment)
        .where(
            Appointment.status == AppointmentStatus.WAITLIST,
            Appointment.starts_at <= now,
            Appointment.deleted_at.is_(None),
        )
        .values(
            status=AppointmentStatus.CANCELLED.value,
            cancel_reason="候补未成功 / waitlist expired",
            version=Appointment.version + 1,
            updated_at=now,
        )
    )
    rows = (
        (
            await session.execute(
                sa.select(Appointment)
                .where(
                    Appointment.status == AppointmentStatus.BOOKED,
                    Appointment.ends_at < now - grace,
                    Appointment.deleted_at.is_(None),
                )
                .with_for_update(skip_locked=True)
            )
        )
        .scalars()
        .all()
    )
    for appointment in rows:
        appointment.status = AppointmentStatus.NOSHOW
        touch(appointment, now)
        assert appointment.id is not None
        await outbox.cancel_for_subject(
            session, "appointment", appointment.id, kinds=["appointment.reminder"]
        )
    await session.flush()
    return list(rows)


async def worklist_entries(
    session: AsyncSession,
    actor: Actor,
    *,
    day: date,
    therapist_id: int | None = None,
    tz: ZoneInfo = HOSPITAL_TZ,
) -> list[tuple[Appointment, Patient, TreatmentItem]]:
    """A therapist's appointments of one local day with their patients and items, in one
    query (the PAD's first screen). Their own unless a head or admin asks."""
    if not is_staff(actor):
        raise forbidden("仅工作人员可查看工作列表 / staff only")
    therapist_id = therapist_id or actor.user_id
    if therapist_id != actor.user_id:
        if not actor.has_role(Role.DEPT_HEAD, Role.ADMIN, "system"):
            raise forbidden("只能查看自己的工作列表 / only your own worklist")
        await access_staff_member(session, actor, therapist_id)  # their own department's
    begins, ends = local_day_bounds(day, tz)
    stmt = (
        sa.select(Appointment, Patient, TreatmentItem)
        .join(Patient, Patient.id == Appointment.patient_id)
        .join(TreatmentItem, TreatmentItem.id == Appointment.item_id)
        .where(
            Appointment.therapist_id == therapist_id,
            Appointment.starts_at >= begins,
            Appointment.starts_at < ends,
            Appointment.deleted_at.is_(None),
            visible_patient_rows_clause(actor),
        )
        .order_by(Appointment.starts_at, Appointment.id)
    )
    entries = [(a, p, i) for a, p, i in (await session.execute(stmt)).all()]
    await log_patient_access(
        session,
        actor,
        "worklist",
        [a.patient_id for a, _, _ in entries],
        detail={"date": day.isoformat(), "therapist_id": therapist_id},
    )
    return entries


async def worklist(
    session: AsyncSession,
    actor: Actor,
    *,
    day: date,
    therapist_id: int | None = None,
    tz: ZoneInfo = HOSPITAL_TZ,
) -> list[Appointment]:
    """A therapist's appointments of one local day (their own unless a head or admin asks)."""
    return [
        a
        for a, _, _ in await worklist_entries(
            session, actor, day=day, therapist_id=therapist_id, tz=tz
        )
    ]


async def appointments_for_patient(
    session: AsyncSession, patient_id: int, *, limit: int = 200
) -> list[Appointment]:
    stmt = (
        sa.select(Appointment)
        .where(Appointment.patient_id == patient_id, Appointment.deleted_at.is_(None))
        .order_by(Appointment.starts_at.desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


def day_start(day: date, tz: ZoneInfo = HOSPITAL_TZ) -> datetime:
    return local_day_bounds(day, tz)[0]
