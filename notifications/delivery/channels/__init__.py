"""Delivery channels. Each knows whether a person can be reached on it, how to send one
message under our idempotency key, and the platform's per-recipient limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

# The order tried when a person has set no preference; the in-app inbox always gets it.
DEFAULT_ORDER = ("webpush", "dingtalk", "wecom", "wechat_oa", "webhook")
INAPP = "inapp"


@dataclass(frozen=True)
class Limits:
    """What a platform accepts for one recipient before it drops silently."""

    per_minute: int | None = None
    per_hour: int | None = None
    per_day: int | None = None
    # DingTalk delivers the same content from one app to one user once a day.
    same_content_seconds: int | None = None


@dataclass
class Message:
    dispatch_id: int
    idempotency_key: str
    recipient_id: int
    addresses: list[Any]
    title: str
    body: str
    url: str | None
    critical: bool
    channel: str = ""


@dataclass
class SendResult:
    status: str  # sent | retry | failed | gone | rate_limited (try again at `retry_at`)
    external_id: str | None = None
    detail: str | None = None
    gone_addresses: list[Any] = field(default_factory=list)
    # rate_limited: when the platform will take it again (a quota reset, a whitelist fixed)
    retry_at: datetime | None = None


class Channel(Protocol):
    name: str
    # True when the receiving side drops a second message under the same key, so a
    # dispatch whose outcome we lost (crash after send) may be sent again with that key.
    honours_idempotency: bool
    limits: Limits

    async def addresses(self, session: AsyncSession, user_id: int) -> list[Any]:
        """Where this person is reached on this channel; empty when not reachable."""
        ...

    # Optional, and what a sweep uses when present: `addresses` for many people in a
    # few queries, {user id: addresses} (people not reachable may be left out).
    # async def addresses_many(self, session: AsyncSession, user_ids: list[int]) -> dict[int, list[Any]]

    async def send(self, message: Message) -> SendResult: ...
