"""Fan-out after reconcile: the notifications applied mutations imply go to the outbox.

Each effect carries a deterministic idempotency key (derived from the fact, such as the
appointment and its slot, never from the push), so a re-pushed mutation or the same fact
reached by two PADs yields one notice. An effect about something already past (a
reminder for a slot that has started) is stale and suppressed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from notifications import outbox
from sync.registry import Effect


async def enqueue_effects(session: AsyncSession, effects: list[Effect], *, now: datetime) -> int:
    sent = 0
    for effect in effects:
        if effect.not_after is not None and effect.not_after <= now:
            continue
        await outbox.enqueue(
            session,
            recipient_id=effect.recipient_id,
            kind=effect.kind,
            title=effect.title,
            body=effect.body,
            idempotency_key=effect.key[:200],
            payload=effect.payload,
            subject_type=effect.subject_type,
            subject_id=effect.subject_id,
            critical=effect.critical,
        )
        sent += 1
    return sent
