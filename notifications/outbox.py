"""The transactional outbox: domain services write notices here, workers deliver them.

`enqueue` runs inside the caller's transaction, so a notice exists if and only if the
change that caused it committed. A repeated idempotency key returns the first notice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from api.models.notices import Notice
from notifications import wakeup
from notifications.policies import default_policies


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
    sender_id: int | None = None,
    policy: str | None = None,
    due_at: datetime | None = None,
) -> Notice:
    """Write a notice; it is delivered after the caller's transaction commits.

    `policy` names a reminder policy of `notifications/policies.yaml` (default: by kind);
    `sender_id` lets the sender see delivery and read receipts; `due_at` delays the first
    delivery (default: at once).
    """
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
        sender_id=sender_id,
    )
    chosen = default_policies().latest(policy) if policy else default_policies().for_kind(kind)
    notice.policy_key, notice.policy_version = chosen.key, chosen.version
    if due_at is not None:
        notice.due_at = due_at
    if session.bind.dialect.name == "postgresql":
        written = await _insert_new(session, notice)
    else:
        written = await _add_new(session, notice)
    if written is None:  # the key was used before: the first notice stands
        return (await session.execute(sa.select(Notice).where(Notice.idempotency_key == idempotency_key))).scalar_one()
    wakeup.mark(session.sync_session)
    return written


async def _insert_new(session: AsyncSession, notice: Notice) -> Notice | None:
    """PostgreSQL: one round trip, INSERT … ON CONFLICT DO NOTHING RETURNING (None on a
    repeated key). Pending ORM changes are flushed first so statements keep their order."""
    await session.flush()
    values = {c.name: getattr(notice, c.key) for c in Notice.__table__.columns if c.name != "id"}  # type: ignore[attr-defined]
    stmt = (
        postgresql.insert(Notice)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[Notice.idempotency_key])
        .returning(Notice)
    )
    result = await session.execute(sa.select(Notice).from_statement(stmt).execution_options(populate_existing=True))
    return result.scalar_one_or_none()


async def _add_new(session: AsyncSession, notice: Notice) -> Notice | None:
    existing = (await session.execute(sa.select(Notice.id).where(Notice.idempotency_key == notice.idempotency_key))).first()
    if existing is not None:
        return None
    session.add(notice)
    await session.flush()
    return notice


async def cancel_for_subject(session: AsyncSession, subject_type: str, subject_id: int, *, kinds: list[str] | None = None) -> int:
    """Cancel unread notices about a closed subject (e.g. an approval instance that ended)."""
    from api.models.base import utcnow

    stmt = (
        sa.update(Notice)
        .where(Notice.subject_type == subject_type, Notice.subject_id == subject_id, Notice.read_at.is_(None), Notice.cancelled_at.is_(None))
        .values(cancelled_at=utcnow(), due_at=None)
    )
    if kinds:
        stmt = stmt.where(Notice.kind.in_(kinds))
    result = await session.execute(stmt)
    return result.rowcount or 0
