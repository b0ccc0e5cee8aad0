"""Remember the first result of a retried command and hand it back on a replay."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.models.audit import IdempotencyRecord


async def recall(session: AsyncSession, scope: str, key: str | None) -> dict[str, Any] | None:
    if not key:
        return None
    record = await session.get(IdempotencyRecord, (scope, key))
    return record.result if record else None


async def remember(
    session: AsyncSession, scope: str, key: str | None, result: dict[str, Any]
) -> None:
    """Store the result in the caller's transaction; a concurrent duplicate fails on the key."""
    if not key:
        return
    session.add(IdempotencyRecord(scope=scope, key=key, result=result))
    await session.flush()
