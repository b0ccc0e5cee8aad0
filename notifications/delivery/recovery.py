"""Recovery: dispatches still `sending` past their lease (the sender died between send and
mark-sent) and due retries."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.delivery import bulk
from notifications.delivery.channels import Channel
from notifications.delivery.recording import attempt_row
from notifications.delivery.rows import (
    ATTEMPTS,
    DISPATCH_COLUMNS,
    DISPATCHES,
    Dispatch,
    SweepReport,
)

OUTCOME_LOST = "发送结果未知（发送进程中断）/ outcome lost when the sender stopped"


async def claim_stalled(
    session: AsyncSession,
    channels: dict[str, Channel],
    now: datetime,
    *,
    batch_size: int,
    lease: timedelta,
    report: SweepReport,
) -> list[Dispatch]:
    """Claim the stalled and due dispatches: those to send again (under the same key
    where the channel honours it) are returned; the others are marked `unknown`."""
    rows = (
        await session.execute(
            sa.select(*DISPATCH_COLUMNS)
            .where(DISPATCHES.c.status.in_(("sending", "retry")), DISPATCHES.c.retry_at <= now)
            .order_by(DISPATCHES.c.retry_at)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not rows:
        return []
    resend: list[Dispatch] = []
    attempts: list[dict[str, Any]] = []
    changed: list[Dispatch] = []
    for row in rows:
        dispatch = Dispatch(*row)
        channel = channels.get(dispatch.channel)
        if dispatch.status == "sending" and not (channel and channel.honours_idempotency):
            # The sender died after claiming it; it may or may not have gone out, and
            # this channel would show a second copy. Never re-sent, shown as unknown.
            dispatch.status, dispatch.retry_at = "unknown", None
            dispatch.last_error = OUTCOME_LOST
            attempts.append(attempt_row(dispatch.id, now, "unknown", dispatch.last_error))
            report.unknown += 1
        else:
            if dispatch.status == "sending":
                report.recovered += 1
            dispatch.status, dispatch.retry_at = "sending", now + lease
            resend.append(dispatch)
        changed.append(dispatch)
    await bulk.update_rows(
        session,
        DISPATCHES,
        [
            {
                "id": d.id,
                "status": d.status,
                "retry_at": d.retry_at,
                "last_error": d.last_error,
            }
            for d in changed
        ],
    )
    await bulk.insert_rows(session, ATTEMPTS, attempts)
    return resend
