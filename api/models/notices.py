"""The notice (notification intent) that domain services write into the outbox.

Delivery, channels and reminder policies build on this table in `notifications/`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from api.models.base import json_field, ts_field


class Notice(SQLModel, table=True):
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
