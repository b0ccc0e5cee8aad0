"""Sending: each dispatch made a message (or an outcome decided without sending), then
the messages sent with bounded concurrency."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.delivery import bulk, limits
from notifications.delivery.channels import Channel, Message, SendResult
from notifications.delivery.routing import Router
from notifications.delivery.rows import DELIVERIES, NOTICES, Dispatch, Outcome

log = logging.getLogger("bedside.notifications")


async def read_since(session: AsyncSession, dispatch_ids: list[int]) -> set[int]:
    """Dispatches carrying a reminder whose notices are all read or cancelled by now
    (a first delivery still goes out: it is the notice itself)."""
    states: dict[int, list[Any]] = defaultdict(list)
    for where in bulk.id_filters(session, DELIVERIES.c.dispatch_id, dispatch_ids):
        rows = await session.execute(
            sa.select(
                DELIVERIES.c.dispatch_id,
                DELIVERIES.c.reminder_no,
                NOTICES.c.read_at,
                NOTICES.c.cancelled_at,
            )
            .join(NOTICES, NOTICES.c.id == DELIVERIES.c.notice_id)
            .where(where)
        )
        for row in rows.all():
            states[row.dispatch_id].append(row)
    return {
        d
        for d, items in states.items()
        if all(r.read_at is not None or r.cancelled_at is not None for r in items)
        and any(r.reminder_no > 0 for r in items)
    }


async def prepare(
    session: AsyncSession,
    router: Router,
    dispatches: list[Dispatch],
    now: datetime,
    *,
    addresses: dict[int, list[Any]] | None = None,
    check_reads: bool = False,
) -> list[Outcome]:
    """For each dispatch: a message to send, or the outcome decided without sending.

    `check_reads`: whether a dispatch's notices were all read (or cancelled) since it
    was planned — checked when a reminder is sent again after a crash or a retry."""
    channels = router.channels
    outcomes: list[Outcome] = []
    closed: set[int] = set()
    if check_reads and dispatches:
        closed = await read_since(session, [d.id for d in dispatches])
    state = await limits.limit_state(session, channels, dispatches, now)
    if addresses is None:
        addresses = await router.addresses_of(session, dispatches)
    limited = {name for name, channel in channels.items() if limits.is_limited(channel)}
    for dispatch in dispatches:
        channel = channels.get(dispatch.channel)
        if channel is None:
            outcomes.append(
                Outcome(dispatch, SendResult("failed", detail="channel not configured"))
            )
            continue
        if dispatch.id in closed:
            outcomes.append(
                Outcome(dispatch, SendResult("skipped", detail="read before the reminder fired"))
            )
            continue
        where = addresses.get(dispatch.id)
        if not where:
            outcomes.append(
                Outcome(
                    dispatch,
                    SendResult("gone", detail="recipient not reachable on this channel"),
                )
            )
            continue
        defer_until, dropped = (
            limits.check(dispatch, channel, state, now)
            if dispatch.channel in limited
            else (None, None)
        )
        if defer_until is not None:
            detail = f"per-recipient limit; deferred to {defer_until.isoformat()}"
            outcomes.append(
                Outcome(dispatch, SendResult("rate_limited", detail=detail), retry_at=defer_until)
            )
            continue
        message = Message(
            dispatch_id=dispatch.id,
            idempotency_key=dispatch.idempotency_key,
            recipient_id=dispatch.recipient_id,
            addresses=list(where),
            title=dispatch.title,
            body=dispatch.body,
            url=dispatch.url,
            critical=dispatch.critical,
            channel=dispatch.channel,
        )
        outcomes.append(Outcome(dispatch, None, message=message, dropped=dropped))
    return outcomes


async def send(outcomes: list[Outcome], channels: dict[str, Channel], *, concurrency: int) -> None:
    """At most `concurrency` sends in flight: that many lanes take the next message
    as each finishes (no task per message)."""
    ready = [o for o in outcomes if o.message is not None]
    queue = iter(ready)

    async def lane() -> None:
        for outcome in queue:
            channel = channels[outcome.dispatch.channel]
            try:
                outcome.result = await channel.send(outcome.message)  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - a channel bug is a retry, never a lost notice
                log.warning("channel %s raised", channel.name, exc_info=True)
                outcome.result = SendResult("retry", detail=type(exc).__name__)

    await asyncio.gather(*(lane() for _ in range(min(concurrency, len(ready)))))
