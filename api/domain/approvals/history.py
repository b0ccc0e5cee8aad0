"""The hash-chained history of every instance: stream `approval:{id}`.

Every state change appends here in the same transaction as the change itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import append_event, expected_stream_sources, stream_events
from api.auth import Actor
from api.models.approvals import ApprovalInstance
from api.models.audit import AuditEvent


def stream_for(instance_id: int) -> str:
    return f"approval:{instance_id}"


async def record(
    session: AsyncSession, instance: ApprovalInstance, action: str, *, actor: Actor | None, at: datetime, **data: Any
) -> AuditEvent:
    assert instance.id is not None
    return await append_event(session, stream_for(instance.id), action, actor=actor, data=data, at=at)


async def instance_history(session: AsyncSession, instance_id: int) -> list[AuditEvent]:
    return await stream_events(session, stream_for(instance_id))


async def _approval_streams(session: AsyncSession) -> Iterable[str]:
    ids = (await session.execute(sa.select(ApprovalInstance.id))).scalars()
    return [stream_for(i) for i in ids]


# `bedside audit verify` reports an instance whose whole history was deleted.
if _approval_streams not in expected_stream_sources:
    expected_stream_sources.append(_approval_streams)
