"""What the bots keep: cards delivered on DingTalk/WeCom, seen callback nonces, one-time
binding links and binding attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from api.models.base import json_field, ts_field


class BotCard(SQLModel, table=True):
    """One task card in one user's chat, and the outbox of its sends and updates.

    `shown` is what the card says now; `wanted` is what it should say. A row whose
    `wanted` differs from `shown` (or that was never sent) is work for `bots.cards.flush`,
    which runs after the commit that changed `wanted`, and again from the sweep.
    """

    __tablename__ = "bot_card"
    __table_args__ = (
        sa.UniqueConstraint("platform", "card_key", name="uq_bot_card_platform_card_key"),
        sa.Index("ix_bot_card_pending", "platform", "dirty"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)  # dingtalk | wecom
    card_key: str = Field(max_length=120)  # DingTalk outTrackId / WeCom task_id
    task_id: int = Field(index=True)  # approval_task.id (no key: bots stay beside the engine)
    instance_id: int = Field(index=True)
    user_id: int = Field(foreign_key="user.id")
    external_id: str = Field(max_length=128)
    wanted: dict[str, Any] = json_field()
    shown: dict[str, Any] | None = json_field(default_factory=lambda: None, nullable=True)
    response_code: str | None = Field(default=None, max_length=200)  # WeCom: single-use update code
    dirty: bool = Field(default=True)
    attempts: int = Field(default=0)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = ts_field(default_now=True)
    sent_at: datetime | None = ts_field(nullable=True)
    updated_at: datetime | None = ts_field(nullable=True)


class BotNonce(SQLModel, table=True):
    """Callback nonces seen (the fallback when Redis is not configured)."""

    __tablename__ = "bot_nonce"

    platform: str = Field(max_length=20, primary_key=True)
    nonce: str = Field(max_length=160, primary_key=True)
    seen_at: datetime = ts_field(default_now=True, index=True)


class BotBindingLink(SQLModel, table=True):
    """A one-time link that binds a platform user id to the Bedside user who opens it."""

    __tablename__ = "bot_binding_link"

    token_hash: str = Field(max_length=64, primary_key=True)
    platform: str = Field(max_length=20)
    external_id: str = Field(max_length=128)
    expires_at: datetime = ts_field()
    used_at: datetime | None = ts_field(nullable=True)
    used_by_id: int | None = Field(default=None, foreign_key="user.id", nullable=True)


class BotBindingAttempt(SQLModel, table=True):
    """A failed patient binding try, counted to slow down guessing."""

    __tablename__ = "bot_binding_attempt"

    id: int | None = Field(default=None, primary_key=True)
    external_id: str = Field(max_length=128, index=True)
    at: datetime = ts_field(default_now=True)


class BotTap(SQLModel, table=True):
    """The inbox of card taps: written and committed before the platform gets its answer,
    decided right after (and by the sweep if the process stopped in between)."""

    __tablename__ = "bot_tap"
    __table_args__ = (
        sa.UniqueConstraint("platform", "callback_id", name="uq_bot_tap_platform_callback_id"),
        sa.Index("ix_bot_tap_unprocessed", "processed_at", "received_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=20)
    callback_id: str = Field(
        max_length=120
    )  # the platform's id for the delivery: retries repeat it
    tap: dict[str, Any] = json_field()  # card_key, external_id, action, comment, response_code
    received_at: datetime = ts_field(default_now=True)
    processed_at: datetime | None = ts_field(nullable=True)
    outcome: str | None = Field(default=None, max_length=40)


class BotOAuthState(SQLModel, table=True):
    """A web OAuth `state` of the Official Account: WeChat takes only a-zA-Z0-9 and at most
    128 bytes, so the state is a short random string and where it leads is kept here."""

    __tablename__ = "bot_oauth_state"

    state_hash: str = Field(max_length=64, primary_key=True)  # sha256 of the state
    next_path: str = Field(max_length=500)
    expires_at: datetime = ts_field(index=True)
    used_at: datetime | None = ts_field(nullable=True)
