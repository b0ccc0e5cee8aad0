from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from api.graphql.people.types import UserRef
from api.graphql.texts import LocalizedText
from notifications.inbox import DeliveryView, NoticeView
from notifications.outbox import TEXTS_KEY


@strawberry.type
class Delivery:
    channel: str
    reminder_no: int
    at: datetime
    status: str
    attempts: int
    possibly_dropped: bool = strawberry.field(
        description="The platform answered success but may have dropped it"
    )
    drop_reason: str | None
    error: str | None

    @classmethod
    def from_view(cls, v: DeliveryView) -> Delivery:
        return cls(
            channel=v.channel,
            reminder_no=v.reminder_no,
            at=v.at,
            status=v.status,
            attempts=v.attempts,
            possibly_dropped=v.possibly_dropped,
            drop_reason=v.drop_reason,
            error=v.error,
        )


@strawberry.type
class Notice:
    id: strawberry.ID
    kind: str
    title: str
    body: str
    critical: bool
    created_at: datetime
    read_at: datetime | None
    read_via: str | None
    reminders_sent: int
    subject_type: str | None
    subject_id: strawberry.ID | None
    deliveries: list[Delivery]
    stored_texts: strawberry.Private[dict[str, Any]]

    @classmethod
    def from_view(cls, v: NoticeView) -> Notice:
        n = v.notice
        stored = (n.payload or {}).get(TEXTS_KEY)
        return cls(
            stored_texts=stored if isinstance(stored, dict) else {},
            id=strawberry.ID(str(n.id)),
            kind=n.kind,
            title=n.title,
            body=n.body,
            critical=n.critical,
            created_at=n.created_at,
            read_at=n.read_at,
            read_via=n.read_via,
            reminders_sent=n.reminders_sent,
            subject_type=n.subject_type,
            subject_id=strawberry.ID(str(n.subject_id)) if n.subject_id is not None else None,
            deliveries=[Delivery.from_view(d) for d in v.deliveries],
        )

    @strawberry.field(description="The title in each language.")
    def title_text(self) -> LocalizedText:
        stored = self.stored_texts.get("title")
        if isinstance(stored, dict):
            return LocalizedText(zh=str(stored.get("zh", "")), en=str(stored.get("en", "")))
        return LocalizedText.of(self.title)

    @strawberry.field(description="The body in each language (line by line).")
    def body_text(self) -> LocalizedText:
        stored = self.stored_texts.get("body")
        if isinstance(stored, dict):
            return LocalizedText(zh=str(stored.get("zh", "")), en=str(stored.get("en", "")))
        return LocalizedText.of_lines(self.body)


@strawberry.type
class ReadReceipt:
    source: str
    at: datetime


@strawberry.type
class NoticeReceipt:
    notice_id: strawberry.ID
    kind: str
    title: str
    recipient: UserRef
    created_at: datetime
    read_at: datetime | None
    read_via: str | None
    reads: list[ReadReceipt]
    reminders_sent: int
    escalated_at: datetime | None
    deliveries: list[Delivery]
    possibly_dropped: bool


@strawberry.type
class PushSubscriptionResult:
    id: strawberry.ID
    endpoint: str


@strawberry.input
class PushSubscriptionInput:
    endpoint: str
    p256dh: str
    auth: str
    user_agent: str | None = None


@strawberry.input
class NotificationPreferenceInput:
    channels: list[str]
    quiet_start: str | None = None
    quiet_end: str | None = None
    digest: bool = True


@strawberry.type
class NotificationPreference:
    channels: list[str]
    quiet_start: str | None
    quiet_end: str | None
    digest: bool
