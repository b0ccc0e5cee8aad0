"""Working-hour arithmetic: "every 2 working hours" skips nights, lunch, weekends and the
official holidays (chinese_calendar also knows the make-up working Saturdays)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import chinese_calendar


@lru_cache(maxsize=4096)  # a sweep asks about the same few days thousands of times
def is_workday(day: date) -> bool:
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:  # a year the calendar does not cover yet
        return day.weekday() < 5


def _parse(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


@dataclass(frozen=True)
class WorkingHours:
    periods: tuple[tuple[time, time], ...]
    tz: ZoneInfo

    @classmethod
    def from_config(cls, periods: list[list[str]], tz: ZoneInfo) -> WorkingHours:
        return cls(tuple((_parse(a), _parse(b)) for a, b in periods), tz)

    def add(self, start: datetime, hours: float) -> datetime:
        """The moment `hours` working hours after `start` (an aware datetime)."""
        remaining = timedelta(hours=hours)
        local = start.astimezone(self.tz)
        day = local.date()
        for _ in range(3660):  # ten years of days: a calendar bug must not loop forever
            if is_workday(day):
                for begin, end in self.periods:
                    period_start = datetime.combine(day, begin, self.tz)
                    period_end = datetime.combine(day, end, self.tz)
                    cursor = max(local, period_start)
                    if cursor >= period_end:
                        continue
                    available = period_end - cursor
                    if remaining <= available:
                        return (cursor + remaining).astimezone(start.tzinfo)
                    remaining -= available
                    local = period_end
            day += timedelta(days=1)
            local = datetime.combine(day, time(0), self.tz)
        raise ValueError("no working hours found in ten years")
