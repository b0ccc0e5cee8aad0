"""Schedules (排班) and the slots they generate over a rolling window.

A schedule is a pattern (weekdays, hours, slot length, capacity) for an item with a
therapist and/or a room. Slots are rows generated for the next N days (default 14) on
working days (Chinese public holidays and make-up working days via `chinese_calendar`),
minus exceptions (a therapist away). Generating again adds only what is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import append_event
from api.auth import Actor
from api.domain.treatments.access import (
    access_item_to_manage,
    access_schedule,
    access_staff_member,
)
from api.domain.treatments.common import (
    HOSPITAL_TZ,
    item_by_code,
    jsonable,
    local_day_bounds,
    now_or,
    require_treatment_staff,
)
from api.errors import invalid
from api.models.treatments import Appointment, Schedule, ScheduleException, Slot

DEFAULT_WINDOW_DAYS = 14


def is_working_day(day: date) -> bool:
    """Mainland China working days (holidays and 调休 included) where the calendar knows
    the year; plain Monday-Friday outside it."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def _parse_hhmm(value: str, field: str) -> time:
    try:
        hours, minutes = value.split(":")
        return time(int(hours), int(minutes))
    except (ValueError, AttributeError):
        raise invalid(field, "时间格式应为 HH:MM / time must be HH:MM") from None


async def create_schedule(
    session: AsyncSession,
    *,
    item_code: str,
    start_time: str,
    end_time: str,
    valid_from: date,
    actor: Actor,
    therapist_id: int | None = None,
    room: str = "",
    weekdays: Sequence[int] = (0, 1, 2, 3, 4),
    slot_minutes: int = 30,
    capacity: int = 1,
    valid_to: date | None = None,
    working_days_only: bool = True,
) -> Schedule:
    require_treatment_staff(actor)
    item = await access_item_to_manage(session, actor, item_code)
    days = await _check_pattern(
        session,
        start_time=start_time,
        end_time=end_time,
        slot_minutes=slot_minutes,
        capacity=capacity,
        weekdays=weekdays,
        valid_from=valid_from,
        valid_to=valid_to,
        therapist_id=therapist_id,
        room=room,
        actor=actor,
    )
    schedule = Schedule(
        item_id=item.id,  # type: ignore[arg-type]
        therapist_id=therapist_id,
        room=room[:60],
        weekdays=days,
        start_time=start_time,
        end_time=end_time,
        slot_minutes=slot_minutes,
        capacity=capacity,
        working_days_only=working_days_only,
        valid_from=valid_from,
        valid_to=valid_to,
    )
    session.add(schedule)
    await session.flush()
    return schedule


async def _check_pattern(
    session: AsyncSession,
    *,
    start_time: str,
    end_time: str,
    slot_minutes: int,
    capacity: int,
    weekdays: Sequence[int],
    valid_from: date,
    valid_to: date | None,
    therapist_id: int | None,
    room: str,
    actor: Actor,
) -> list[int]:
    start, end = _parse_hhmm(start_time, "startTime"), _parse_hhmm(end_time, "endTime")
    if end <= start:
        raise invalid("endTime", "结束时间须晚于开始时间 / end must be after start")
    if not 5 <= slot_minutes <= 480:
        raise invalid("slotMinutes", "时段长度须在 5-480 分钟 / slot length must be 5-480 minutes")
    if not 1 <= capacity <= 500:
        raise invalid("capacity", "容量须在 1-500 之间 / capacity must be 1-500")
    days = sorted(set(weekdays))
    if not days or any(d not in range(7) for d in days):
        raise invalid("weekdays", "工作日须为 0-6（周一为 0）/ weekdays are 0-6, Monday = 0")
    if valid_to is not None and valid_to < valid_from:
        raise invalid("validTo", "结束日期早于开始日期 / validTo is before validFrom")
    if therapist_id is not None:
        await access_staff_member(session, actor, therapist_id)
    if not therapist_id and not room:
        raise invalid("room", "须指定治疗师或治疗室 / a therapist or a room is required")
    return days


async def update_schedule(
    session: AsyncSession,
    schedule: Schedule,
    *,
    end_time: str,
    weekdays: Sequence[int],
    slot_minutes: int,
    capacity: int,
    valid_to: date | None,
    working_days_only: bool,
    actor: Actor,
) -> dict[str, list[object]]:
    """Change a schedule's pattern; slots already generated stay (bookings may hold them),
    the next `generate_slots` follows the new pattern. Returns the changed fields."""
    require_treatment_staff(actor)
    assert schedule.id is not None
    await access_schedule(session, actor, schedule.id)
    days = await _check_pattern(
        session,
        start_time=schedule.start_time,
        end_time=end_time,
        slot_minutes=slot_minutes,
        capacity=capacity,
        weekdays=weekdays,
        valid_from=schedule.valid_from,
        valid_to=valid_to,
        therapist_id=schedule.therapist_id,
        room=schedule.room,
        actor=actor,
    )
    values: dict[str, object] = {
        "end_time": end_time,
        "weekdays": days,
        "slot_minutes": slot_minutes,
        "capacity": capacity,
        "valid_to": valid_to,
        "working_days_only": working_days_only,
    }
    changes = {k: [getattr(schedule, k), v] for k, v in values.items() if getattr(schedule, k) != v}
    for key, (_, new) in changes.items():
        setattr(schedule, key, new)
    if changes:
        await session.flush()
        await append_event(
            session,
            f"schedule:{schedule.id}",
            "updated",
            actor=actor,
            data={"changes": {k: [jsonable(a), jsonable(b)] for k, (a, b) in changes.items()}},
        )
    return changes


def _slot_times(schedule: Schedule, day: date, tz: ZoneInfo) -> list[tuple[datetime, datetime]]:
    start = datetime.combine(day, _parse_hhmm(schedule.start_time, "startTime"), tzinfo=tz)
    end = datetime.combine(day, _parse_hhmm(schedule.end_time, "endTime"), tzinfo=tz)
    step = timedelta(minutes=schedule.slot_minutes)
    times = []
    while start + step <= end:
        times.append((start.astimezone(UTC), (start + step).astimezone(UTC)))
        start += step
    return times


def _runs_on(schedule: Schedule, day: date, away: set[tuple[str, int]]) -> bool:
    if day < schedule.valid_from or (schedule.valid_to and day > schedule.valid_to):
        return False
    if schedule.working_days_only:
        if not is_working_day(day):
            return False  # a public holiday, even on a scheduled weekday
        # A make-up working day (调休) on a weekend runs the weekday pattern.
        if day.weekday() not in schedule.weekdays and not (
            day.weekday() >= 5 and any(d < 5 for d in schedule.weekdays)
        ):
            return False
    elif day.weekday() not in schedule.weekdays:
        return False
    if ("schedule", schedule.id) in away or (
        schedule.therapist_id and ("therapist", schedule.therapist_id) in away
    ):  # type: ignore[operator]
        return False
    return True


async def generate_slots(
    session: AsyncSession,
    *,
    start: date,
    days: int = DEFAULT_WINDOW_DAYS,
    tz: ZoneInfo = HOSPITAL_TZ,
    schedule_ids: Sequence[int] | None = None,
) -> int:
    """Create the missing slots for [start, start + days). Returns how many were added."""
    stmt = sa.select(Schedule).where(Schedule.is_active.is_(True))
    if schedule_ids is not None:
        stmt = stmt.where(Schedule.id.in_(list(schedule_ids)))
    schedules = list((await session.execute(stmt)).scalars())
    if not schedules:
        return 0
    end = start + timedelta(days=days)
    exceptions = (
        (
            await session.execute(
                sa.select(ScheduleException).where(
                    ScheduleException.day >= start, ScheduleException.day < end
                )
            )
        )
        .scalars()
        .all()
    )
    away_by_day: dict[date, set[tuple[str, int]]] = {}
    for exc in exceptions:
        marks = away_by_day.setdefault(exc.day, set())
        if exc.schedule_id:
            marks.add(("schedule", exc.schedule_id))
        if exc.therapist_id:
            marks.add(("therapist", exc.therapist_id))
    range_start, _ = local_day_bounds(start, tz)
    range_end, _ = local_day_bounds(end, tz)
    existing = {
        (sid, at)
        for sid, at in (
            await session.execute(
                sa.select(Slot.schedule_id, Slot.starts_at).where(
                    Slot.schedule_id.in_([s.id for s in schedules]),
                    Slot.starts_at >= range_start,
                    Slot.starts_at < range_end,
                )
            )
        ).all()
    }
    rows = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        away = away_by_day.get(day, set())
        for schedule in schedules:
            if not _runs_on(schedule, day, away):
                continue
            for begins, ends in _slot_times(schedule, day, tz):
                if (schedule.id, begins) in existing:
                    continue
                rows.append(
                    dict(
                        schedule_id=schedule.id,
                        item_id=schedule.item_id,
                        therapist_id=schedule.therapist_id,
                        room=schedule.room,
                        starts_at=begins,
                        ends_at=ends,
                        capacity=schedule.capacity,
                        remaining=schedule.capacity,
                    )
                )
    if rows:
        await session.execute(sa.insert(Slot), rows)
    return len(rows)


async def add_exception(
    session: AsyncSession,
    *,
    day: date,
    actor: Actor,
    schedule_id: int | None = None,
    therapist_id: int | None = None,
    reason: str = "",
    tz: ZoneInfo = HOSPITAL_TZ,
    now: datetime | None = None,
) -> ScheduleException:
    """A day off for a schedule or a therapist: unbooked slots of that day are withdrawn.

    Slots with bookings stay (the patients must be rescheduled by staff, who see them in
    the worklist); only their remaining seats are closed.
    """
    require_treatment_staff(actor)
    if schedule_id is None and therapist_id is None:
        raise invalid("scheduleId", "须指定排班或治疗师 / a schedule or a therapist is required")
    if schedule_id is not None:
        await access_schedule(session, actor, schedule_id)
    else:
        assert therapist_id is not None
        await access_staff_member(session, actor, therapist_id)
    exception = ScheduleException(
        schedule_id=schedule_id, therapist_id=therapist_id, day=day, reason=reason[:200]
    )
    session.add(exception)
    begins, ends = local_day_bounds(day, tz)
    clause = Slot.schedule_id == schedule_id if schedule_id else Slot.therapist_id == therapist_id
    await session.execute(
        sa.update(Slot)
        .where(clause, Slot.starts_at >= begins, Slot.starts_at < ends, Slot.cancelled_at.is_(None))
        .values(cancelled_at=now_or(now))
    )
    await session.flush()
    return exception


async def available_slots(
    session: AsyncSession,
    *,
    item_code: str,
    start: date,
    end: date,
    tz: ZoneInfo = HOSPITAL_TZ,
    now: datetime | None = None,
    include_full: bool = False,
) -> list[Slot]:
    """Open slots of an item from `start` to `end` inclusive (local days), future only."""
    if end < start:
        raise invalid("to", "结束日期早于开始日期 / 'to' is before 'from'")
    if (end - start).days > 62:
        raise invalid("to", "查询范围最长 62 天 / at most 62 days at once")
    item = await item_by_code(session, item_code)
    begins, _ = local_day_bounds(start, tz)
    _, ends = local_day_bounds(end, tz)
    begins = max(begins, now_or(now))
    stmt = (
        sa.select(Slot)
        .where(
            Slot.item_id == item.id,
            Slot.starts_at >= begins,
            Slot.starts_at < ends,
            Slot.cancelled_at.is_(None),
        )
        .order_by(Slot.starts_at, Slot.id)
    )
    if not include_full:
        stmt = stmt.where(Slot.remaining > 0)
    return list((await session.execute(stmt)).scalars())


async def slot_bookings(session: AsyncSession, slot_id: int) -> list[Appointment]:
    stmt = sa.select(Appointment).where(
        Appointment.slot_id == slot_id, Appointment.deleted_at.is_(None)
    )
    return list((await session.execute(stmt)).scalars())
