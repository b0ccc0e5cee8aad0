"""Fan-out after reconcile: the notifications applied mutations imply go to the outbox.

Each effect carries a deterministic idempotency key (derived from the fact, such as the
appointment and its slot, never from the push), so a re-pushed mutation or the same fact
reached by two PADs yields one notice. An effect about something already past (a
reminder for a slot that has started) is stale and suppressed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from notifications import outbox
from sync.registry import Effect


def effect_notices(effects: list[Effect], *, now: datetime) -> list[dict[str, Any]]:
    """The notices (keyword arguments of `outbox.enqueue`) the effects ask for now."""
    return [
        {
            "recipient_id": effect.recipient_id,
            "kind": effect.kind,
            "title": effect.title,
            "body": effect.body,
            "idempotency_key": effect.key[:200],
            "payload": effect.payload,
            "subject_type": effect.subject_type,
            "subject_id": effect.subject_id,
            "critical": effect.critical,
        }
        for effect in effects
        if effect.not_after is None or effect.not_after > now
    ]


async def enqueue_effects(session: AsyncSession, effects: list[Effect], *, now: datetime) -> int:
    notices = effect_notices(effects, now=now)
    for kwargs in notices:
        await outbox.enqueue(session, **kwargs)
    return len(notices)


async def enqueue_many(session: AsyncSession, notices: list[dict[str, Any]]) -> None:
    """Write the collected notices of several applied mutations at once."""
    await outbox.enqueue_many(session, notices)
