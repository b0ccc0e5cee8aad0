"""Reading notices back: a person's inbox, and receipts for the sender."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor
from api.errors import forbidden
from api.models.notices import Notice
from api.models.notifications import NoticeDelivery, NoticeDispatch, NoticeRead
from api.models.people import Role


@dataclass
class DeliveryView:
    channel: str
    reminder_no: int
    at: datetime
    status: str
    attempts: int = 0
    possibly_dropped: bool = False
    drop_reason: str | None = None
    error: str | None = None


@dataclass
class NoticeView:
    notice: Notice
    deliveries: list[DeliveryView] = field(default_factory=list)
    reads: list[NoticeRead] = field(default_factory=list)


async def deliveries_for(
    session: AsyncSession, notice_ids: list[int]
) -> dict[int, list[DeliveryView]]:
    if not notice_ids:
        return {}
    rows = (
        await session.execute(
            sa.select(NoticeDelivery, NoticeDispatch)
            .outerjoin(NoticeDispatch, NoticeDispatch.id == NoticeDelivery.dispatch_id)
            .where(NoticeDelivery.notice_id.in_(notice_ids))
            .order_by(NoticeDelivery.id)
        )
    ).all()
    out: dict[int, list[DeliveryView]] = defaultdict(list)
    for delivery, dispatch in rows:
        if dispatch is None:  # the in-app inbox: delivered when the notice was first delivered
            out[delivery.notice_id].append(
                DeliveryView(
                    delivery.channel, delivery.reminder_no, delivery.created_at, "delivered"
                )
            )
            continue
        out[delivery.notice_id].append(
            DeliveryView(
                channel=delivery.channel,
                reminder_no=delivery.reminder_no,
                at=dispatch.sent_at or delivery.created_at,
                status=dispatch.status,
                attempts=dispatch.attempts,
                possibly_dropped=dispatch.possibly_dropped,
                drop_reason=dispatch.drop_reason,
                error=dispatch.last_error,
            )
        )
    return out


async def my_notices(
    session: AsyncSession, actor: Actor, *, unread_only: bool = False, limit: int = 100
) -> list[NoticeView]:
    stmt = sa.select(Notice).where(
        Notice.recipient_id == actor.user_id, Notice.cancelled_at.is_(None)
    )
    if unread_only:
        stmt = stmt.where(Notice.read_at.is_(None))
    notices = list(
        (
            await session.execute(
                stmt.order_by(Notice.created_at.desc(), Notice.id.desc()).limit(
                    max(0, min(limit, 500))
                )
            )
        ).scalars()
    )
    deliveries = await deliveries_for(session, [n.id for n in notices if n.id is not None])
    return [NoticeView(n, deliveries.get(n.id, [])) for n in notices]  # type: ignore[arg-type]


async def receipts(
    session: AsyncSession, actor: Actor, *, subject_type: str, subject_id: int
) -> list[NoticeView]:
    """Who got what about a subject, on which channel, and who has read it.

    Senders see the notices they caused; medical affairs and admins see all."""
    notices = list(
        (
            await session.execute(
                sa.select(Notice)
                .where(Notice.subject_type == subject_type, Notice.subject_id == subject_id)
                .order_by(Notice.id)
            )
        ).scalars()
    )
    overseer = actor.has_role(Role.ADMIN) or actor.has_role(Role.MEDICAL_AFFAIRS)
    if not overseer:
        if notices and not any(n.sender_id == actor.user_id for n in notices):
            raise forbidden("只有发送人可以查看回执 / only the sender sees receipts")
        notices = [n for n in notices if n.sender_id == actor.user_id]
    ids = [n.id for n in notices if n.id is not None]
    deliveries = await deliveries_for(session, ids)
    reads: dict[int, list[NoticeRead]] = defaultdict(list)
    if ids:
        for read in (
            await session.execute(
                sa.select(NoticeRead).where(NoticeRead.notice_id.in_(ids)).order_by(NoticeRead.at)
            )
        ).scalars():
            reads[read.notice_id].append(read)
    return [NoticeView(n, deliveries.get(n.id, []), reads.get(n.id, [])) for n in notices]  # type: ignore[arg-type]
