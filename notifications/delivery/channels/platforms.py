"""DingTalk work notices, WeCom app messages and Official Account template messages.

The channels speak to the platform API clients of `integrations.platforms` through the
narrow `Messenger` interface below (one call: send a text card to one external user id),
so token caching, refresh and rate-limit retries stay in the client, shared with the
bots. A channel without a configured client is simply not available to anyone.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncSession

from api.domain.people import external_id_for
from api.models.people import ExternalIdentity
from notifications.delivery.bulk import id_filters
from notifications.delivery.channels import Limits, Message, SendResult, oa_templates

log = logging.getLogger("bedside.notifications")


class MessengerError(Exception):
    """Raised by a messenger; `retry` says whether trying again later may help;
    `retry_after` (seconds) that the platform will refuse until then (a configuration or
    quota state the operator is told about), which is no failed attempt."""

    def __init__(
        self, message: str, *, retry: bool, gone: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.retry = retry
        self.gone = gone
        self.retry_after = retry_after


def result_of(exc: MessengerError) -> SendResult:
    if exc.retry_after is not None:
        return SendResult(
            "rate_limited",
            detail=str(exc)[:300],
            retry_at=datetime.now(UTC) + timedelta(seconds=exc.retry_after),
        )
    if exc.gone:
        return SendResult("gone", detail=str(exc)[:300])
    return SendResult("retry" if exc.retry else "failed", detail=str(exc)[:300])


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
            return result_of(exc)
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

    async def send(self, message: Message) -> SendResult:
        """A template message chosen by the notice's kind (`oa_templates`)."""
        send_for = getattr(self.messenger, "send_message", None)
        if send_for is None:
            return await super().send(message)
        try:
            external_id = await send_for(message)
        except MessengerError as exc:
            return result_of(exc)
        return SendResult("sent", external_id=external_id)


# ---------------------------------------------------------------------------------
# Messengers over the platform clients of `integrations.platforms` (tokens shared in
# Redis, rate-limit retries inside the client).


def _messenger_error(exc: Exception) -> MessengerError:
    from integrations.platforms import (
        PlatformBlocked,
        PlatformError,
        PlatformNotConfigured,
        RateLimited,
    )

    if isinstance(exc, PlatformNotConfigured):
        return MessengerError(str(exc), retry=False, gone=True)
    if isinstance(exc, PlatformBlocked):
        report_blocked(exc)
        return MessengerError(f"{exc} — {exc.hint}", retry=True, retry_after=exc.retry_after)
    if isinstance(exc, RateLimited):
        return MessengerError(str(exc), retry=True)
    if isinstance(exc, PlatformError):
        return MessengerError(str(exc), retry=(exc.status or 0) >= 500)
    return MessengerError(type(exc).__name__, retry=True)  # network trouble


PLATFORM_BLOCKED = Counter(
    "bedside_platform_blocked_total",
    "Platform answers that wait for the hospital (IP whitelist, quota, account type)",
    ["platform", "code"],
)


def report_blocked(exc: Any) -> None:
    """Tell the operator: an ERROR log line naming what to do, and a metric to alert on."""
    PLATFORM_BLOCKED.labels(exc.platform, str(exc.code)).inc()
    log.error(
        "%s refuses with %s (%s): %s. Messages wait and are retried in %d s.",
        exc.platform,
        exc.code,
        exc.message,
        exc.hint,
        int(exc.retry_after),
    )


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
                task_id = await self.client.send_action_card_notice(
                    [external_id], title, markdown, "查看 / Open", url
                )
            else:
                task_id = await self.client.send_markdown_notice([external_id], title, markdown)
        except Exception as exc:  # noqa: BLE001 - mapped to retry / failed below
            raise _messenger_error(exc) from exc
        await self._check_reached(external_id, task_id)
        return task_id

    async def _check_reached(self, external_id: str, task_id: str) -> None:
        """asyncsend_v2 answers ok before sending: the send result says whom it did not
        reach (an id DingTalk does not know, flow control, a failure). Still in progress
        (in no list yet) counts as sent; the result cannot be awaited here."""
        if not task_id:
            return
        try:
            result = await self.client.send_result(task_id)
        except Exception:  # noqa: BLE001 - the message went; only the check failed
            log.info("DingTalk send result for task %s not read", task_id)
            return
        if external_id in (result.get("invalid_user_id_list") or []):
            raise MessengerError("DingTalk does not know this user", retry=False, gone=True)
        forbidden = [str(f.get("userid") or "") for f in result.get("forbidden_list") or []]
        if external_id in (result.get("forbidden_user_id_list") or []) or external_id in forbidden:
            raise MessengerError(
                "DingTalk held the message back (flow control: same content or daily limit)",
                retry=False,
            )
        if external_id in (result.get("failed_user_id_list") or []):
            raise MessengerError("DingTalk could not deliver the message", retry=True)


def cut_bytes(text: str, limit: int) -> str:
    """At most `limit` bytes of UTF-8, cut on a character boundary."""
    raw = text.encode()
    return text if len(raw) <= limit else raw[:limit].decode(errors="ignore")


class WeComMessenger:
    """An app message (textcard). WeCom's duplicate check drops an identical message within
    four hours; our text carries the key's reference, so identical text is the same key."""

    def __init__(self, client: Any, home_url: str = "") -> None:
        self.client = client
        self.home_url = home_url

    async def send_notice(
        self, external_id: str, *, title: str, body: str, url: str | None, key: str
    ) -> str | None:
        # textcard (https://developer.work.weixin.qq.com/document/path/90236): title at most
        # 128 bytes, description 512 bytes, url required, btntxt 4 characters.
        content = {
            "title": cut_bytes(title, 128),
            "description": cut_bytes(body, 512),
            "url": url or self.home_url,
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
    """A template message per notice kind (`oa_templates`); `client_msg_id` is our key,
    which WeChat uses to drop a repeat."""

    def __init__(self, client: Any, services: Any) -> None:
        self.client = client
        self.services = services
        self.templates = oa_templates.templates(services.settings)

    async def send_notice(
        self, external_id: str, *, title: str, body: str, url: str | None, key: str
    ) -> str | None:
        raise MessengerError("template messages need the notice's kind", retry=False)

    async def send_message(self, message: Message) -> str | None:
        kind, facts = await self._facts(message)
        purpose = oa_templates.PURPOSES.get(kind or "")
        template = self.templates.get(purpose or "")
        if template is None:
            # No template for this kind: not reachable here; the next channel takes it.
            raise MessengerError(f"no Official Account template for {kind}", retry=False, gone=True)
        data = oa_templates.template_data(template, facts)
        try:
            return await self.client.send_template_message(
                message.addresses[0],
                template.template_id,
                data,
                url=message.url,
                client_msg_id=message.idempotency_key[:64],
            )
        except Exception as exc:  # noqa: BLE001
            raise _messenger_error(exc) from exc

    async def _facts(self, message: Message) -> tuple[str | None, dict[str, str]]:
        """The dispatch's (first) notice: its kind and the facts its template may show."""
        from api.models.notices import Notice
        from api.models.notifications import NoticeDelivery
        from api.models.treatments import Appointment, FollowUp, TreatmentItem

        facts = {"title": message.title.split(" / ")[0], "body": message.body}
        async with self.services.db.session() as session:
            notice = (
                await session.execute(
                    sa.select(Notice)
                    .join(NoticeDelivery, NoticeDelivery.notice_id == Notice.id)
                    .where(NoticeDelivery.dispatch_id == message.dispatch_id)
                    .order_by(Notice.id)
                    .limit(1)
                )
            ).scalar_one_or_none()
            if notice is None:
                return None, facts
            payload = notice.payload or {}
            tz = self.services.settings.tz
            subject: Any = None
            if payload.get("appointment_id") is not None:
                subject = await session.get(Appointment, int(payload["appointment_id"]))
            elif payload.get("follow_up_id") is not None:
                subject = await session.get(FollowUp, int(payload["follow_up_id"]))
            if subject is not None:
                item = await session.get(TreatmentItem, subject.item_id)
                at = getattr(subject, "starts_at", None) or getattr(subject, "due_at", None)
                facts.update(
                    item=item.name if item else "",
                    time=at.astimezone(tz).strftime("%Y年%m月%d日 %H:%M") if at else "",
                    room=getattr(subject, "room", "") or "",
                    receipt_no=getattr(subject, "receipt_no", "") or "",
                    status=STATUS_PHRASES.get(notice.kind, ""),
                )
            return notice.kind, facts


STATUS_PHRASES = {
    "appointment.booked": "已预约",
    "appointment.rescheduled": "已改约",
    "appointment.cancelled": "已取消",
}


def platform_messengers(services: Any) -> dict[str, Messenger]:
    """Messengers for the platforms whose credentials are configured."""
    from integrations.platforms import get_platforms

    platforms = get_platforms(services)
    found: dict[str, Messenger] = {}
    if platforms.dingtalk.configured:
        found["dingtalk"] = DingTalkMessenger(platforms.dingtalk)
    if platforms.wecom.configured:
        found["wecom"] = WeComMessenger(platforms.wecom, services.settings.public_url)
    if platforms.wechat_oa.configured and oa_templates.templates(services.settings):
        found["wechat_oa"] = OfficialAccountMessenger(platforms.wechat_oa, services)
    return found
