"""Each penalty's hash chain, `penalty:{id}`: every change, with the penalty's state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api import audit
from api.auth import Actor
from api.models.penalties import Penalty


def penalty_stream(penalty_id: int) -> str:
    return f"penalty:{penalty_id}"


async def _expected_streams(session: AsyncSession) -> list[str]:
    ids = (await session.execute(sa.select(col(Penalty.id)))).scalars()
    return [penalty_stream(i) for i in ids if i is not None]


audit.expected_stream_sources.append(_expected_streams)


async def record(
    session: AsyncSession, penalty: Penalty, action: str, actor: Actor, now: datetime, **data: Any
) -> None:
    assert penalty.id is not None
    body = {
        "status": penalty.status,
        "kind": penalty.kind,
        "rule_id": penalty.rule_id,
        "doctor_id": penalty.doctor_id,
        "total_points": penalty.total_points,
        **data,
    }
    await audit.append_event(
        session, penalty_stream(penalty.id), action, actor=actor, data=body, at=now
    )
