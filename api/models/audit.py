"""The hash-chained history and the access log. Rows here are only ever inserted."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from api.models.base import json_field, ts_field


class AuditStream(SQLModel, table=True):
    """The head of one chain (e.g. `approval:42`): its length and last hash.

    Locked while an event is appended, so two writers never fork the chain, and compared
    with the events by `bedside audit verify`, so a deleted tail is found too.
    """

    __tablename__ = "audit_stream"

    stream: str = Field(primary_key=True, max_length=80)
    last_seq: int = Field(default=0)
    last_hash: str = Field(default="", max_length=64)
    created_at: datetime = ts_field(default_now=True)


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_event"
    __table_args__ = (sa.UniqueConstraint("stream", "seq", name="uq_audit_event_stream_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    stream: str = Field(max_length=80, index=True)
    seq: int
    action: str = Field(max_length=60)
    actor_id: int | None = Field(default=None, index=True)
    at: datetime = ts_field(default_now=True)
    data: dict[str, Any] = json_field()
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AccessLog(SQLModel, table=True):
    """Who read or exported patient data, what, when and from where."""

    __tablename__ = "access_log"

    id: int | None = Field(default=None, primary_key=True)
    actor_id: int | None = Field(default=None, index=True)
    action: str = Field(max_length=20)  # query | export
    resource: str = Field(max_length=80)
    detail: dict[str, Any] = json_field()
    ip: str | None = Field(default=None, max_length=64)
    request_id: str | None = Field(default=None, max_length=64)
    at: datetime = ts_field(default_now=True, index=True)


class IdempotencyRecord(SQLModel, table=True):
    """The first result of a retried command (bot tap, sync mutation, HL7 message …)."""

    __tablename__ = "idempotency_record"

    scope: str = Field(primary_key=True, max_length=60)
    actor: str = Field(primary_key=True, max_length=80)  # api.idempotency.actor_key
    key: str = Field(primary_key=True, max_length=200)
    result: dict[str, Any] = json_field()
    created_at: datetime = ts_field(default_now=True)


class AccessLogPatient(SQLModel, table=True):
    """Each patient an access-log row returned: answers "who saw patient X"."""

    __tablename__ = "access_log_patient"

    access_log_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("access_log.id", ondelete="CASCADE"), primary_key=True
        )
    )
    patient_id: int = Field(primary_key=True, index=True)
