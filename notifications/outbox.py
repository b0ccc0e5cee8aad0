"""The transactional outbox: domain services write notices here, workers deliver them.

`enqueue` runs inside the caller's transaction, so a notice exists if and only if the
change that caused it committed. A repeated idempotency key returns the first notice.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.models.notices import Notice


async def enqueue(
    session: AsyncSession,
    *,
    recipient_id: int,
    kind: str,
    title: str,
    idempotency_key: str,
    body: str = "",
    payload: dict[str, Any] | None = None,
    subject_type: str | None = None,
    subject_id: int | None = None,
    critical: bool = False,
) -> Notice:
    existing = (
        await session.execute(sa.select(Notice).where(Notice.idempotency_key == idempotency_key))
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    notice = Notice(
        recipient_id=recipient_id,
        kind=kind,
        title=title,
        body=body,
        payload=payload or {},
        idempotency_key=idempotency_key,
        subject_type=subject_type,
        subject_id=subject_id,
        critical=critical,
    )
    session.add(notice)
    await session.flush()
    return notice


async def cancel_for_subject(session: AsyncSession, subject_type: str, subject_id: int, *, kinds: list[str] | None = None) -> int:
    """Cancel unread notices about a closed subject (e.g. an approval instance that ended)."""
    from api.models.base import utcnow

    stmt = (
        sa.update(Notice)
        .where(Notice.subject_type == subject_type, Notice.subject_id == subject_id, Notice.read_at.is_(None), Notice.cancelled_at.is_(None))
        .values(cancelled_at=utcnow())
    )
    if kinds:
        stmt = stmt.where(Notice.kind.in_(kinds))
    result = await session.execute(stmt)
    return result.rowcount or 0
