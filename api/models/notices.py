"""The notice (notification intent) that domain services write into the outbox.

Delivery, channels and reminder policies build on this table in `notifications/`.
`due_at` is the one column the dispatcher looks at: it says when the notice next needs
work (first delivery, a delivery deferred past quiet hours, the next reminder). A read,
a cancel or the end of a policy clears it, so a sweep touches only due rows through the
partial index `ix_notice_due`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from api.models.base import UTCDateTime, json_field, ts_field, utcnow


class Notice(SQLModel, table=True):
    __table_args__ = (
        sa.Index(
            "ix_notice_due",
            "due_at",
            postgresql_where=sa.text("due_at IS NOT NULL"),
            sqlite_where=sa.text("due_at IS NOT NULL"),
        ),
        sa.Index("ix_notice_subject", "subject_type", "subject_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    recipient_id: int = Field(foreign_key="user.id", index=True)
    kind: str = Field(max_length=60)
    title: str = Field(max_length=200)
    body: str = Field(default="", max_length=2000)
    payload: dict[str, Any] = json_field()
    idempotency_key: str = Field(unique=True, max_length=200)
    subject_type: str | None = Field(default=None, max_length=40)
    subject_id: int | None = Field(default=None)
    critical: bool = Field(default=False)
    created_at: datetime = ts_field(default_now=True, index=True)
    read_at: datetime | None = ts_field(nullable=True)
    cancelled_at: datetime | None = ts_field(nullable=True)

    # Delivery state (notifications/). The sender sees receipts for the notices it caused.
    sender_id: int | None = Field(default=None, foreign_key="user.id", nullable=True)
    policy_key: str | None = Field(default=None, max_length=60)
    policy_version: int | None = Field(default=None)
    due_at: datetime | None = Field(
        default_factory=utcnow, sa_column=sa.Column(UTCDateTime(), nullable=True)
    )
    delivered_at: datetime | None = ts_field(nullable=True)
    reminders_sent: int = Field(default=0)
    last_reminded_at: datetime | None = ts_field(nullable=True)
    escalated_at: datetime | None = ts_field(nullable=True)
    escalation_notice_id: int | None = Field(default=None, nullable=True)
    read_via: str | None = Field(default=None, max_length=20)
