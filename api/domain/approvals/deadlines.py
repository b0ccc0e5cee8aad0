"""Deadlines: plain hours, or Chinese working hours when a definition says so."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar

HOSPITAL_TZ = ZoneInfo("Asia/Shanghai")
# Office hours of the administrative departments that approve (医务处, 院办).
WORKING_WINDOWS = ((time(8, 0), time(12, 0)), (time(13, 30), time(17, 30)))


def _is_workday(day: datetime) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day.date()))
    except NotImplementedError:  # a year the calendar does not know yet: weekdays
        return day.weekday() < 5


def add_working_hours(start: datetime, hours: float) -> datetime:
    """`hours` of office time after `start`, skipping nights, weekends and holidays
    (including the make-up working days of the Chinese calendar)."""
    remaining = timedelta(hours=hours)
    local = start.astimezone(HOSPITAL_TZ)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    for _ in range(3660):  # ten years of days: a bound, never reached for sane deadlines
        if _is_workday(day):
            for opens, closes in WORKING_WINDOWS:
                window_start = max(local, day.replace(hour=opens.hour, minute=opens.minute))
                window_end = day.replace(hour=closes.hour, minute=closes.minute)
                if window_start >= window_end:
                    continue
                if window_end - window_start >= remaining:
                    return (window_start + remaining).astimezone(UTC)
                remaining -= window_end - window_start
        day += timedelta(days=1)
        local = day
    raise ValueError("deadline too far in the future")


def due_after(
    start: datetime, hours: float | None, *, working_hours: bool = False
) -> datetime | None:
    if hours is None:
        return None
    if working_hours:
        return add_working_hours(start, hours)
    return start + timedelta(hours=hours)
