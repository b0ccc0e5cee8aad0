"""Rate limits: the platforms' per-recipient windows and same-content rule."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.delivery import bulk
from notifications.delivery.channels import Channel
from notifications.delivery.rows import DISPATCHES, Dispatch

MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
SAME_CONTENT_DROPPED = "同一内容一天内已发送，平台可能不再投递 / same content sent within a day; the platform may drop it"


def windows(channel: Channel) -> list[tuple[int, timedelta]]:
    """(limit, window) for each per-recipient window the channel's platform enforces."""
    limits = channel.limits
    return [
        (limit, window)
        for limit, window in (
            (limits.per_minute, MINUTE),
            (limits.per_hour, HOUR),
            (limits.per_day, DAY),
        )
        if limit is not None
    ]


def is_limited(channel: Channel) -> bool:
    return bool(windows(channel)) or bool(channel.limits.same_content_seconds)


@dataclass
class LimitState:
    """Per (channel, recipient): [(count, oldest sent_at)] for each configured window;
    and (channel, recipient, title, body) sent within the same-content window."""

    sent: dict[tuple[str, int], list[tuple[int, datetime | None]]] = field(default_factory=dict)
    same_content: set[tuple[str, int, str, str]] = field(default_factory=set)


async def limit_state(
    session: AsyncSession, channels: dict[str, Channel], dispatches: list[Dispatch], now: datetime
) -> LimitState:
    """What went out already to the batch's recipients, per limited channel: a few
    grouped queries per batch instead of several per message; `check` then counts
    the batch's own messages as it lets them through."""
    state = LimitState()
    by_channel: dict[str, set[int]] = defaultdict(set)
    for d in dispatches:
        by_channel[d.channel].add(d.recipient_id)
    for name, recipients in by_channel.items():
        channel = channels.get(name)
        if channel is None:
            continue
        if not is_limited(channel):
            continue
        limits = channel.limits
        spans = windows(channel)
        for where in bulk.id_filters(session, DISPATCHES.c.recipient_id, sorted(recipients)):
            base = (DISPATCHES.c.channel == name, DISPATCHES.c.status == "sent", where)
            if spans:
                columns: list[Any] = [DISPATCHES.c.recipient_id]
                for _, window in spans:
                    recent = DISPATCHES.c.sent_at > now - window
                    columns += [
                        sa.func.count().filter(recent),
                        sa.func.min(DISPATCHES.c.sent_at).filter(recent),
                    ]
                widest = max(window for _, window in spans)
                stmt = (
                    sa.select(*columns)
                    .where(*base, DISPATCHES.c.sent_at > now - widest)
                    .group_by(DISPATCHES.c.recipient_id)
                )
                for row in (await session.execute(stmt)).all():
                    state.sent[(name, row[0])] = [
                        (row[1 + 2 * i], row[2 + 2 * i]) for i in range(len(spans))
                    ]
            if limits.same_content_seconds:
                stmt = sa.select(
                    DISPATCHES.c.recipient_id, DISPATCHES.c.title, DISPATCHES.c.body
                ).where(
                    *base,
                    DISPATCHES.c.sent_at > now - timedelta(seconds=limits.same_content_seconds),
                )
                state.same_content.update(
                    (name, r, t, b) for r, t, b in (await session.execute(stmt)).all()
                )
    return state


def check(
    dispatch: Dispatch, channel: Channel, state: LimitState, now: datetime
) -> tuple[datetime | None, str | None]:
    """(defer until, possibly-dropped reason) from the platform's per-recipient limits.

    A message let through counts at once against the rest of its batch: thirty-one
    pending for one WeCom member in one sweep are thirty now and one a minute later."""
    limits = channel.limits
    spans = windows(channel)
    where = (dispatch.channel, dispatch.recipient_id)
    counts = state.sent.get(where) or [(0, None)] * len(spans)
    for (limit, window), (count, oldest) in zip(spans, counts, strict=True):
        if count >= limit and not dispatch.critical:
            return (oldest or now) + window, None
    state.sent[where] = [(count + 1, oldest or now) for count, oldest in counts]
    dropped = None
    content = (dispatch.channel, dispatch.recipient_id, dispatch.title, dispatch.body)
    if limits.same_content_seconds:
        if content in state.same_content:
            dropped = SAME_CONTENT_DROPPED
        state.same_content.add(content)
    return None, dropped
