"""The read state, merged from every place a notice can be seen. The first read sets
`read_at` and clears `due_at` in the same transaction, so no later sweep reminds."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import forbidden, not_found
from api.models.base import utcnow
from api.models.notices import Notice
from api.models.notifications import NoticeRead

SOURCES = {"pwa", "dingtalk", "wecom", "wechat_oa", "link", "webpush"}


async def mark_read(
    session: AsyncSession, notice_id: int, *, user_id: int, source: str, now: datetime | None = None
) -> Notice:
    """Idempotent: reading twice (or from two places) keeps the first read time."""
    if source not in SOURCES:
        raise ValueError(f"unknown read source {source!r}")
    notice = (
        await session.execute(sa.select(Notice).where(Notice.id == notice_id).with_for_update())
    ).scalar_one_or_none()
    if notice is None:
        raise not_found("通知", "notice")
    if notice.recipient_id != user_id:
        raise forbidden("只能标记自己的通知 / only your own notices")
    now = now or utcnow()
    exists = (
        await session.execute(
            sa.select(NoticeRead.id).where(
                NoticeRead.notice_id == notice_id, NoticeRead.source == source
            )
        )
    ).scalar_one_or_none()
    if exists is None:
        session.add(NoticeRead(notice_id=notice_id, user_id=user_id, source=source, at=now))
    if notice.read_at is None:
        notice.read_at = now
        notice.read_via = source
        notice.due_at = None
    await session.flush()
    return notice
