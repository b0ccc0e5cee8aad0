"""myNotices, markNoticeRead, noticeReceipts, web push registration, preferences."""

from __future__ import annotations

import strawberry

from api.graphql.context import Info
from api.graphql.notices.types import Delivery as DeliveryType
from api.graphql.notices.types import (
    Notice,
    NoticeReceipt,
    NotificationPreference,
    NotificationPreferenceInput,
    PushSubscriptionInput,
    PushSubscriptionResult,
    ReadReceipt,
)
from api.graphql.people.types import UserRef
from api.graphql.permissions import IsAuthenticated, IsStaff
from api.graphql.scalars import parse_id
from api.models.people import User
from notifications import inbox, preferences, reads, subscriptions


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[IsAuthenticated], description="My notices, newest first (in-app inbox)."
    )
    async def my_notices(
        self, info: Info, unread_only: bool = False, limit: int = 100
    ) -> list[Notice]:
        actor = info.context.require_actor()
        async with info.context.read() as session:
            views = await inbox.my_notices(session, actor, unread_only=unread_only, limit=limit)
        return [Notice.from_view(v) for v in views]

    @strawberry.field(
        permission_classes=[IsStaff],
        description="Delivery and read receipts of the notices about a subject, for its sender.",
    )
    async def notice_receipts(
        self, info: Info, subject_type: str, subject_id: strawberry.ID
    ) -> list[NoticeReceipt]:
        actor = info.context.require_actor()
        sid = parse_id(subject_id, "subjectId")
        async with info.context.read() as session:
            views = await inbox.receipts(session, actor, subject_type=subject_type, subject_id=sid)
            users = {
                u.id: u
                for u in [await session.get(User, v.notice.recipient_id) for v in views]
                if u is not None
            }
        return [
            NoticeReceipt(
                notice_id=strawberry.ID(str(v.notice.id)),
                kind=v.notice.kind,
                title=v.notice.title,
                recipient=UserRef.from_row(users[v.notice.recipient_id]),
                created_at=v.notice.created_at,
                read_at=v.notice.read_at,
                read_via=v.notice.read_via,
                reads=[ReadReceipt(source=r.source, at=r.at) for r in v.reads],
                reminders_sent=v.notice.reminders_sent,
                escalated_at=v.notice.escalated_at,
                deliveries=[DeliveryType.from_view(d) for d in v.deliveries],
                possibly_dropped=any(
                    d.possibly_dropped or d.status == "unknown" for d in v.deliveries
                ),
            )
            for v in views
        ]

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="The public VAPID key (applicationServerKey) for web push; null when push is off.",
    )
    async def vapid_public_key(self, info: Info) -> str | None:
        return subscriptions.vapid_public_key(info.context.settings.vapid_private_key)

    @strawberry.field(
        permission_classes=[IsAuthenticated], description="My channel order and quiet hours."
    )
    async def my_notification_preferences(self, info: Info) -> NotificationPreference:
        actor = info.context.require_actor()
        async with info.context.read() as session:
            pref = await preferences.get_preferences(session, actor)
        return NotificationPreference(
            channels=list(pref.channels),
            quiet_start=pref.quiet_start,
            quiet_end=pref.quiet_end,
            digest=pref.digest,
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Mark a notice read (idempotent); stops its reminders at once.",
    )
    async def mark_notice_read(self, info: Info, id: strawberry.ID) -> Notice:
        actor = info.context.require_actor()
        notice_id = parse_id(id, "id")
        async with info.context.transaction() as session:
            await reads.mark_read(session, notice_id, user_id=actor.user_id, source="pwa")
            views = await inbox.deliveries_for(session, [notice_id])
            notice = await session.get(reads.Notice, notice_id)
        return Notice.from_view(inbox.NoticeView(notice, views.get(notice_id, [])))  # type: ignore[arg-type]

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Store this device's web push subscription.",
    )
    async def register_push_subscription(
        self, info: Info, input: PushSubscriptionInput
    ) -> PushSubscriptionResult:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            sub = await subscriptions.register_subscription(
                session,
                actor,
                endpoint=input.endpoint,
                p256dh=input.p256dh,
                auth=input.auth,
                user_agent=input.user_agent,
            )
        return PushSubscriptionResult(id=strawberry.ID(str(sub.id)), endpoint=sub.endpoint)

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Set my channel order, quiet hours and digest choice.",
    )
    async def set_notification_preferences(
        self, info: Info, input: NotificationPreferenceInput
    ) -> NotificationPreference:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            pref = await preferences.set_preferences(
                session,
                actor,
                channels=input.channels,
                quiet_start=input.quiet_start,
                quiet_end=input.quiet_end,
                digest=input.digest,
            )
        return NotificationPreference(
            channels=list(pref.channels),
            quiet_start=pref.quiet_start,
            quiet_end=pref.quiet_end,
            digest=pref.digest,
        )
