"""Quiet hours: a person's local night (e.g. 22:00-07:00) when only critical notices ring."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


def _parse(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def quiet_until(start: str | None, end: str | None, now: datetime, tz: ZoneInfo) -> datetime | None:
    """When the quiet period around `now` ends, or None when `now` is not quiet."""
    if not start or not end:
        return None
    begin, finish = _parse(start), _parse(end)
    local = now.astimezone(tz)
    t = local.time()
    if begin <= finish:
        quiet = begin <= t < finish
    else:  # over midnight
        quiet = t >= begin or t < finish
    if not quiet:
        return None
    ends = datetime.combine(local.date(), finish, tz)
    if ends <= local:
        ends += timedelta(days=1)
    return ends.astimezone(now.tzinfo)
