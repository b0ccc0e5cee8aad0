"""Fallback: a message that failed for good goes to the person's next channel."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.delivery import bulk
from notifications.delivery.routing import Router
from notifications.delivery.rows import (
    DELIVERIES,
    Dispatch,
    delivery_row,
    dispatch_row,
    insert_dispatches,
)
from notifications.delivery.texts import rekey


async def fallback(
    session: AsyncSession, failed: Dispatch, now: datetime, *, router: Router, lease: timedelta
) -> Dispatch | None:
    """The same message on the person's next channel, under that channel's key."""
    route = await router.route(session, failed.recipient_id)
    deliveries = (
        await session.execute(
            sa.select(DELIVERIES.c.notice_id, DELIVERIES.c.reminder_no).where(
                DELIVERIES.c.dispatch_id == failed.id
            )
        )
    ).all()
    if not deliveries:
        return None
    used = set(
        (
            await session.execute(
                sa.select(DELIVERIES.c.channel).where(
                    DELIVERIES.c.notice_id.in_([d.notice_id for d in deliveries]),
                    DELIVERIES.c.reminder_no.in_([d.reminder_no for d in deliveries]),
                )
            )
        ).scalars()
    )
    later = (
        [c for c in route[route.index(failed.channel) + 1 :] if c not in used]
        if failed.channel in route
        else [c for c in route if c not in used]
    )
    if not later:
        return None
    channel = later[0]
    row = dispatch_row(
        recipient_id=failed.recipient_id,
        channel=channel,
        idempotency_key=rekey(failed.idempotency_key, channel),
        title=failed.title,
        body=failed.body,
        url=failed.url,
        critical=failed.critical,
        now=now,
        lease=lease,
    )
    (dispatch,) = await insert_dispatches(session, [row])
    await bulk.insert_rows(
        session,
        DELIVERIES,
        [delivery_row(d.notice_id, d.reminder_no, channel, dispatch.id, now) for d in deliveries],
    )
    return dispatch
