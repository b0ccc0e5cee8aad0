"""Where notices went: dispatches to channels, attempts, read receipts, push
subscriptions and each person's channel preferences.

A *dispatch* is one message to one channel for one person, under one idempotency key
(a digest carries several notices in one dispatch). A *delivery* links a notice's
reminder to the dispatch that carried it, so `(notice, reminder, channel)` is unique and
a key is never reused for another message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from api.models.base import json_field, ts_field


class NoticeDispatch(SQLModel, table=True):
    __tablename__ = "notice_dispatch"
    __table_args__ = (
        # Unfinished dispatches (in flight or waiting for a retry) for the recovery sweep.
        sa.Index(
            "ix_notice_dispatch_open",
            "retry_at",
            postgresql_where=sa.text("status IN ('sending', 'retry')"),
            sqlite_where=sa.text("status IN ('sending', 'retry')"),
        ),
        # Per-recipient rate limits count what went to one person on one channel.
        sa.Index("ix_notice_dispatch_rate", "recipient_id", "channel", "sent_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    recipient_id: int = Field(foreign_key="user.id")
    channel: str = Field(max_length=20)
    idempotency_key: str = Field(unique=True, max_length=120)
    title: str = Field(max_length=200)
    body: str = Field(default="", max_length=4000)
    url: str | None = Field(default=None, max_length=500)
    critical: bool = Field(default=False)
    # sending (claimed, maybe in flight) | retry | sent | failed | gone | unknown
    status: str = Field(default="sending", max_length=12)
    attempts: int = Field(default=0)
    retry_at: datetime | None = ts_field(nullable=True)
    created_at: datetime = ts_field(default_now=True)
    sent_at: datetime | None = ts_field(nullable=True)
    external_id: str | None = Field(default=None, max_length=200)
    last_error: str | None = Field(default=None, max_length=500)
    # A platform may answer success and still drop the message (DingTalk: same content
    # to the same user within a day; WeCom: beyond 30/min or 1000/h). Shown to senders.
    possibly_dropped: bool = Field(default=False)
    drop_reason: str | None = Field(default=None, max_length=200)


class NoticeDelivery(SQLModel, table=True):
    __tablename__ = "notice_delivery"
    __table_args__ = (
        sa.UniqueConstraint(
            "notice_id", "reminder_no", "channel", name="uq_notice_delivery_notice_reminder_channel"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    # Looked up by notice through the unique constraint (notice_id first): no index of its own.
    notice_id: int = Field(foreign_key="notice.id")
    reminder_no: int = Field(default=0)  # 0: the first delivery; 1..N reminders
    channel: str = Field(max_length=20)
    dispatch_id: int | None = Field(default=None, foreign_key="notice_dispatch.id", index=True)
    created_at: datetime = ts_field(default_now=True)


class NoticeAttempt(SQLModel, table=True):
    __tablename__ = "notice_attempt"

    id: int | None = Field(default=None, primary_key=True)
    dispatch_id: int = Field(foreign_key="notice_dispatch.id", index=True)
    at: datetime = ts_field(default_now=True)
    ok: bool = Field(default=False)
    result: str = Field(max_length=20)  # sent | retry | failed | gone | rate_limited | skipped
    detail: str | None = Field(default=None, max_length=500)


class NoticeRead(SQLModel, table=True):
    """Every place a notice was seen (PWA, card tap, opened link). The first one sets
    `notice.read_at`; the rest are receipts."""

    __tablename__ = "notice_read"
    __table_args__ = (
        sa.UniqueConstraint("notice_id", "source", name="uq_notice_read_notice_source"),
    )

    id: int | None = Field(default=None, primary_key=True)
    notice_id: int = Field(foreign_key="notice.id", index=True)
    user_id: int = Field(foreign_key="user.id")
    source: str = Field(max_length=20)  # pwa | dingtalk | wecom | wechat_oa | link | webpush
    at: datetime = ts_field(default_now=True)


class PushSubscription(SQLModel, table=True):
    """One browser/device's web push subscription (removed when the service says 404/410)."""

    __tablename__ = "push_subscription"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    endpoint: str = Field(unique=True, max_length=1000)
    p256dh: str = Field(max_length=200)
    auth: str = Field(max_length=100)
    user_agent: str | None = Field(default=None, max_length=300)
    created_at: datetime = ts_field(default_now=True)
    last_success_at: datetime | None = ts_field(nullable=True)


class NotificationPreference(SQLModel, table=True):
    """A person's channel order and quiet hours (local time, e.g. 22:00-07:00)."""

    __tablename__ = "notification_preference"

    user_id: int = Field(foreign_key="user.id", primary_key=True)
    channels: list[str] = json_field(default_factory=list)
    quiet_start: str | None = Field(default=None, max_length=5)
    quiet_end: str | None = Field(default=None, max_length=5)
    digest: bool = Field(default=True)
    extra: dict[str, Any] = json_field()
