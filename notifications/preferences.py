"""A person's channel order and quiet hours."""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor
from api.errors import invalid
from api.models.notifications import NotificationPreference
from notifications.delivery.channels import DEFAULT_ORDER

HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


async def set_preferences(
    session: AsyncSession,
    actor: Actor,
    *,
    channels: list[str],
    quiet_start: str | None,
    quiet_end: str | None,
    digest: bool,
) -> NotificationPreference:
    unknown = [c for c in channels if c not in DEFAULT_ORDER]
    if unknown:
        raise invalid("channels", f"未知渠道 / unknown channel: {', '.join(unknown)}")
    if len(set(channels)) != len(channels):
        raise invalid("channels", "渠道重复 / a channel is listed twice")
    for field, value in (("quietStart", quiet_start), ("quietEnd", quiet_end)):
        if value is not None and not HHMM.match(value):
            raise invalid(field, "时间格式应为 HH:MM / expected HH:MM")
    if (quiet_start is None) != (quiet_end is None):
        raise invalid(
            "quietEnd", "免打扰需同时设置开始和结束 / set both start and end of quiet hours"
        )
    pref = await session.get(NotificationPreference, actor.user_id)
    if pref is None:
        pref = NotificationPreference(user_id=actor.user_id)
        session.add(pref)
    pref.channels, pref.quiet_start, pref.quiet_end, pref.digest = (
        list(channels),
        quiet_start,
        quiet_end,
        digest,
    )
    await session.flush()
    return pref


async def get_preferences(session: AsyncSession, actor: Actor) -> NotificationPreference:
    pref = await session.get(NotificationPreference, actor.user_id)
    return pref or NotificationPreference(
        user_id=actor.user_id, channels=list(DEFAULT_ORDER), digest=True
    )
