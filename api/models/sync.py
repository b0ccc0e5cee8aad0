"""Offline sync bookkeeping: client groups and clients, each mutation's outcome, the
change log the pull cursor reads, the client views handed out as cookies, conflicts the
therapist resolves, and attachments uploaded by content hash.

The protocol itself is explained in `sync/__init__.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from api.models.base import JSONType, json_field, ts_field


class SyncClientGroup(SQLModel, table=True):
    """One browser profile on one PAD (its page and its service worker share it).

    Pushes of one group are serialized by locking this row.
    """

    __tablename__ = "sync_client_group"

    id: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(foreign_key="user.id", index=True)
    created_at: datetime = ts_field(default_now=True)


class SyncClient(SQLModel, table=True):
    """One client (tab or worker) of a group and the last mutation applied from it."""

    __tablename__ = "sync_client"

    id: str = Field(primary_key=True, max_length=64)
    client_group_id: str = Field(foreign_key="sync_client_group.id", index=True, max_length=64)
    last_mutation_id: int = Field(
        default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0")
    )
    updated_at: datetime = ts_field(default_now=True)


class SyncMutation(SQLModel, table=True):
    """What the server decided for one mutation; a replay returns this first answer."""

    __tablename__ = "sync_mutation"

    client_id: str = Field(primary_key=True, max_length=64)
    mutation_id: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True))
    user_id: int = Field(index=True)
    name: str = Field(max_length=60)
    status: str = Field(max_length=20)  # applied | merged | conflict | rejected
    code: str | None = Field(default=None, max_length=40)
    reason: str | None = Field(default=None, max_length=500)
    result: dict[str, Any] = json_field()
    client_time: datetime | None = ts_field(nullable=True)
    applied_at: datetime = ts_field(default_now=True)


class SyncChange(SQLModel, table=True):
    """One row per insert/update/delete of a synced table, written by a database trigger.

    `txid` is the writing transaction's id on PostgreSQL (`pg_current_xact_id()`), 0 on
    SQLite where the autoincrement `id` orders commits (one writer at a time).
    """

    __tablename__ = "sync_change"
    __table_args__ = (sa.Index("ix_sync_change_entity_txid", "entity", "txid"),)

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
    )
    entity: str = Field(max_length=40)
    entity_id: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    txid: int = Field(
        default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0")
    )


class SyncClientView(SQLModel, table=True):
    """A client view record (CVR): the keys a device holds after one pull, and the
    snapshot the pull read. The cookie names one of these; a retried pull with an older
    cookie still diffs against what the device really has."""

    __tablename__ = "sync_client_view"

    id: int | None = Field(default=None, primary_key=True)
    client_group_id: str = Field(foreign_key="sync_client_group.id", index=True, max_length=64)
    user_id: int = Field(foreign_key="user.id")
    snapshot: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    keys: list[str] = json_field(default_factory=list)
    created_at: datetime = ts_field(default_now=True)


class SyncConflict(SQLModel, table=True):
    """A value that lost a same-field edit race, kept for the therapist to resolve."""

    __tablename__ = "sync_conflict"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)  # whose edit raced
    client_id: str = Field(max_length=64)
    mutation_id: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    entity: str = Field(max_length=40)
    entity_id: int
    field: str = Field(max_length=60)
    base_value: Any = Field(default=None, sa_column=sa.Column(JSONType, nullable=True))
    losing_value: Any = Field(default=None, sa_column=sa.Column(JSONType, nullable=True))
    winning_value: Any = Field(default=None, sa_column=sa.Column(JSONType, nullable=True))
    client_won: bool = Field(default=False)  # the device's value replaced the server's
    status: str = Field(default="open", max_length=20)  # open | resolved
    resolution: str | None = Field(default=None, max_length=20)  # keep | mine | custom
    resolved_by: int | None = Field(default=None)
    resolved_at: datetime | None = ts_field(nullable=True)
    created_at: datetime = ts_field(default_now=True)


class SyncAttachment(SQLModel, table=True):
    """A photo or signature uploaded in chunks, named by the sha256 of its content."""

    __tablename__ = "sync_attachment"

    sha256: str = Field(primary_key=True, max_length=64)
    size: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    received: int = Field(
        default=0, sa_column=sa.Column(sa.BigInteger, nullable=False, server_default="0")
    )
    content_type: str = Field(default="application/octet-stream", max_length=100)
    complete: bool = Field(default=False)
    uploaded_by: int = Field(foreign_key="user.id")
    created_at: datetime = ts_field(default_now=True)
    completed_at: datetime | None = ts_field(nullable=True)
