"""Notices to patients that must wait (day-before reminder, follow-up due date).

The time is written twice: as `payload["deliver_after"]` (data any channel can read) and,
where the outbox supports delayed delivery (`enqueue(..., due_at=)`), as the notice's due
time so the notifications worker holds it until then.
"""

from __future__ import annotations

import inspect
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.models.notices import Notice
from notifications import outbox

OUTBOX_DELAYS = "due_at" in inspect.signature(outbox.enqueue).parameters


async def enqueue_later(
    session: AsyncSession, *, deliver_after: datetime, payload: dict[str, Any], **notice: Any
) -> Notice:
    payload = {**payload, "deliver_after": deliver_after.isoformat()}
    if OUTBOX_DELAYS:
        notice["due_at"] = deliver_after
    return await outbox.enqueue(session, payload=payload, **notice)
