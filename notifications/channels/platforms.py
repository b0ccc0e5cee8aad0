"""DingTalk work notices, WeCom app messages and Official Account template messages.

The channels speak to the platform API clients of `integrations.platforms` through the
narrow `Messenger` interface below (one call: send a text card to one external user id),
so token caching, refresh and rate-limit retries stay in the client, shared with the
bots. A channel without a configured client is simply not available to anyone.
"""

from __future__ import annotations

from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.domain.people import external_id_for
from api.models.people import ExternalIdentity
from notifications.bulk import id_filters
from notifications.channels import Limits, Message, SendResult


class MessengerError(Exception):
    """Raised by a messenger; `retry` says whether trying again later may help."""

    def __init__(self, message: str, *, retry: bool, gone: bool = False) -> None:
        super().__init__(message)
        self.retry = retry
        self.gone = gone


class Messenger(Protocol):
    async def send_notice(
        self, external_id: str, *, title: str, body: str, url: str | None, key: str
    ) -> str | None:
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

    async def addresses_many(
        self, session: AsyncSession, user_ids: list[int]
    ) -> dict[int, list[Any]]:
        found: dict[int, list[Any]] = {}
        for where in id_filters(session, ExternalIdentity.user_id, user_ids):
            rows = await session.execute(
                sa.select(ExternalIdentity.user_id, ExternalIdentity.external_id).where(
                    ExternalIdentity.provider == self.provider, where
                )
            )
            found.update((u, [e]) for u, e in rows.all() if e)
        return found

    async def send(self, message: Message) -> SendResult:
        try:
            external_id = await self.messenger.send_notice(
                message.addresses[0],
                title=message.title,
                body=message.body,
                url=message.url,
                key=message.idempotency_key,
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
    honours_idempotency = True  # template messages carry client_msg_id = our key
    limits = Limits(per_day=100)


# ---------------------------------------------------------------------------------
# Messengers over the platform clients of `integrations.platforms` (tokens shared in
# Redis, rate-limit retries inside the client).


def _messenger_error(exc: Exception) -> MessengerError:
    from integrations.platforms import PlatformError, PlatformNotConfigured, RateLimited

    if isinstance(exc, PlatformNotConfigured):
        return MessengerError(str(exc), retry=False, gone=True)
    if isinstance(exc, RateLimited):
        return MessengerError(str(exc), retry=True)
    if isinstance(exc, PlatformError):
        return MessengerError(str(exc), retry=(exc.status or 0) >= 500)
    return MessengerError(type(exc).__name__, retry=True)  # network trouble


class DingTalkMessenger:
    """A work notice (工作通知) as an action card that opens the notice."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def send_notice(
        self, external_id: str, *, title: str, body: str, url: str | None, key: str
    ) -> str | None:
        markdown = f"### {title}\n\n" + body.replace("\n", "  \n")
        try:
            if url:
                return await self.client.send_action_card_notice(
                    [external_id], title, markdown, "查看 / Open", url
                )
            return await self.client.send_markdown_notice([external_id], title, markdown)
        except Exception as exc:  # noqa: BLE001 - mapped to retry / failed below
            raise _messenger_error(exc) from exc


class WeComMessenger:
    """An app message (textcard). WeCom's duplicate check drops an identical message within
    four hours; our text carries the key's reference, so identical text is the same key."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def send_notice(
        self, external_id: str, *, title: str, body: str, url: str | None, key: str
    ) -> str | None:
        content = {
            "title": title[:128],
            "description": body[:512],
            "url": url or "",
            "btntxt": "查看",
        }
        try:
            answer = await self.client.send_message(
                [external_id],
                "textcard",
                content,
                enable_duplicate_check=1,
                duplicate_check_interval=4 * 3600,
            )
        except Exception as exc:  # noqa: BLE001
            raise _messenger_error(exc) from exc
        if answer.get("invaliduser"):
            raise MessengerError("invalid user", retry=False, gone=True)
        return str(answer.get("msgid") or "") or None


class OfficialAccountMessenger:
    """A template message; `client_msg_id` is our key, which WeChat uses to drop repeats."""

    def __init__(self, client: Any, template_id: str) -> None:
        self.client = client
        self.template_id = template_id

    async def send_notice(
        self, external_id: str, *, title: str, body: str, url: str | None, key: str
    ) -> str | None:
        data = {"first": title, "keyword1": body[:200], "remark": "床旁 Bedside"}
        try:
            return await self.client.send_template_message(
                external_id, self.template_id, data, url=url, client_msg_id=key[:64]
            )
        except Exception as exc:  # noqa: BLE001
            raise _messenger_error(exc) from exc


def platform_messengers(services: Any) -> dict[str, Messenger]:
    """Messengers for the platforms whose credentials are configured."""
    from integrations.platforms import get_platforms

    platforms = get_platforms(services)
    found: dict[str, Messenger] = {}
    if platforms.dingtalk.configured:
        found["dingtalk"] = DingTalkMessenger(platforms.dingtalk)
    if platforms.wecom.configured:
        found["wecom"] = WeComMessenger(platforms.wecom)
    template = (services.settings.wechat_oa_template_ids or {}).get("notice")
    if platforms.wechat_oa.configured and template:
        found["wechat_oa"] = OfficialAccountMessenger(platforms.wechat_oa, template)
    return found
