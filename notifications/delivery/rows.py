"""The rows a sweep reads and writes, as plain dataclasses (no ORM objects), and the one
place a new dispatch row is built."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.models.notices import Notice
from api.models.notifications import (
    NoticeAttempt,
    NoticeDelivery,
    NoticeDispatch,
    NotificationPreference,
)
from notifications.delivery import bulk
from notifications.delivery.channels import Message, SendResult
from notifications.delivery.texts import Item

NOTICES: sa.Table = Notice.__table__  # type: ignore[attr-defined]
DISPATCHES: sa.Table = NoticeDispatch.__table__  # type: ignore[attr-defined]
DELIVERIES: sa.Table = NoticeDelivery.__table__  # type: ignore[attr-defined]
ATTEMPTS: sa.Table = NoticeAttempt.__table__  # type: ignore[attr-defined]
PREFS: sa.Table = NotificationPreference.__table__  # type: ignore[attr-defined]


@dataclass(slots=True)
class DueNotice:
    """A due notice as the sweep reads it: a plain row it may change (no ORM object)."""

    id: int
    recipient_id: int
    kind: str
    title: str
    body: str
    critical: bool
    created_at: datetime
    read_at: datetime | None
    cancelled_at: datetime | None
    policy_key: str | None
    policy_version: int | None
    due_at: datetime | None
    delivered_at: datetime | None
    reminders_sent: int
    last_reminded_at: datetime | None
    escalated_at: datetime | None
    escalation_notice_id: int | None
    subject_type: str | None
    subject_id: int | None
    sender_id: int | None


DUE_COLUMNS = [NOTICES.c[f.name] for f in fields(DueNotice)]
# What a sweep may change on a notice (written back for the whole batch in one UPDATE).
SCHEDULE = (
    "due_at",
    "delivered_at",
    "reminders_sent",
    "last_reminded_at",
    "escalated_at",
    "escalation_notice_id",
)


@dataclass(slots=True)
class Dispatch:
    """One message to one channel for one person (a row of `notice_dispatch`)."""

    id: int
    recipient_id: int
    channel: str
    idempotency_key: str
    title: str
    body: str
    url: str | None
    critical: bool
    status: str
    attempts: int
    retry_at: datetime | None
    created_at: datetime
    sent_at: datetime | None = None
    external_id: str | None = None
    last_error: str | None = None
    possibly_dropped: bool = False
    drop_reason: str | None = None


DISPATCH_COLUMNS = [DISPATCHES.c[f.name] for f in fields(Dispatch)]
# The columns of a dispatch an outcome changes (written back in one UPDATE).
RECORDED = (
    "status",
    "attempts",
    "retry_at",
    "sent_at",
    "external_id",
    "last_error",
    "possibly_dropped",
    "drop_reason",
)


@dataclass
class Planned:
    """A dispatch of this sweep before it has an id, with where it goes."""

    dispatch: dict[str, Any]
    items: list[Item]
    addresses: list[Any]


@dataclass(slots=True)
class Outcome:
    dispatch: Dispatch
    result: SendResult | None
    message: Message | None = None
    dropped: str | None = None
    retry_at: datetime | None = None


@dataclass
class SweepReport:
    notices_examined: int = 0
    first_deliveries: int = 0
    reminders: int = 0
    escalations: int = 0
    stopped: int = 0
    deferred_quiet: int = 0
    first_by_card: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    rate_limited: int = 0
    recovered: int = 0
    unknown: int = 0
    escalated_notice_ids: list[int] = field(default_factory=list)


def dispatch_row(
    *,
    recipient_id: int,
    channel: str,
    idempotency_key: str,
    title: str,
    body: str,
    url: str | None,
    critical: bool,
    now: datetime,
    lease: timedelta,
) -> dict[str, Any]:
    """The row of a new dispatch: claimed (`sending`) for one lease from `now`."""
    return {
        "recipient_id": recipient_id,
        "channel": channel,
        "idempotency_key": idempotency_key,
        "title": title,
        "body": body,
        "url": url,
        "critical": critical,
        "status": "sending",
        "attempts": 0,
        "retry_at": now + lease,
        "created_at": now,
        "possibly_dropped": False,
    }


def delivery_row(
    notice_id: int, reminder_no: int, channel: str, dispatch_id: int | None, now: datetime
) -> dict[str, Any]:
    """The row that ties one notice (and which reminder of it) to a dispatch."""
    return {
        "notice_id": notice_id,
        "reminder_no": reminder_no,
        "channel": channel,
        "dispatch_id": dispatch_id,
        "created_at": now,
    }


async def insert_dispatches(session: AsyncSession, rows: list[dict[str, Any]]) -> list[Dispatch]:
    """INSERT new dispatches; the same rows back as `Dispatch`es with their ids."""
    # Matched back by key: every dispatch has its own idempotency key (unique).
    ids = dict(
        (key, i)
        for i, key in await bulk.insert_rows(
            session, DISPATCHES, rows, returning=("id", "idempotency_key")
        )
    )
    return [Dispatch(id=ids[r["idempotency_key"]], **r) for r in rows]
