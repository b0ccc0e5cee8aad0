"""DingTalk work notices, WeCom app messages and Official Account template messages.

The channels speak to the platform API clients of `integrations.platforms` through the
narrow `Messenger` interface below (one call: send a text card to one external user id),
so token caching, refresh and rate-limit retries stay in the client, shared with the
bots. A channel without a configured client is simply not available to anyone.
"""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from api.domain.people import external_id_for
from notifications.channels import Limits, Message, SendResult


class MessengerError(Exception):
    """Raised by a messenger; `retry` says whether trying again later may help."""

    def __init__(self, message: str, *, retry: bool, gone: bool = False) -> None:
        super().__init__(message)
        self.retry = retry
        self.gone = gone


class Messenger(Protocol):
    async def send_notice(self, external_id: str, *, title: str, body: str, url: str | None, key: str) -> str | None:
        """Send one message; return the platform's message/task id."""
        ...


class PlatformChannel:
    provider: str = ""
    name: str = ""
    honours_idempotency = False
    limits = Limits()

    def __init__(self, messenger: Messenger) -> None:
        self.messenger = messenger

    async def addresses(self, session: AsyncSession, user_id: int) -> list[Any]:
        external = await external_id_for(session, user_id, self.provider)
        return [external] if external else []

    async def send(self, message: Message) -> SendResult:
        try:
            external_id = await self.messenger.send_notice(
                message.addresses[0], title=message.title, body=message.body, url=message.url, key=message.idempotency_key
            )
        except MessengerError as exc:
            if exc.gone:
                return SendResult("gone", detail=str(exc)[:300])
            return SendResult("retry" if exc.retry else "failed", detail=str(exc)[:300])
        return SendResult("sent", external_id=external_id)


class DingTalkChannel(PlatformChannel):
    provider = name = "dingtalk"
    # Same content from one app to one user: delivered once a day; 500 a day at most.
    limits = Limits(per_day=500, same_content_seconds=24 * 3600)


class WeComChannel(PlatformChannel):
    provider = name = "wecom"
    # WeCom's duplicate check (enable_duplicate_check) drops an identical message within
    # its interval; the key is part of the text, so identical text means the same key.
    honours_idempotency = True
    limits = Limits(per_minute=30, per_hour=1000)


class OfficialAccountChannel(PlatformChannel):
    provider = "wechat_oa"
    name = "wechat_oa"
    limits = Limits(per_day=100)
