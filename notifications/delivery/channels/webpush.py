"""Web push (RFC 8030/8291/8292) with pywebpush: VAPID-signed, aes128gcm-encrypted, one
request per subscribed device. A 404/410 means the subscription is gone; the dispatcher
removes it. The push service keeps one pending message per `Topic`, so the key's hash in
the Topic header lets a re-send replace rather than duplicate an undelivered message."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pywebpush import WebPushException, webpush_async
from sqlalchemy.ext.asyncio import AsyncSession

from api.models.notifications import PushSubscription
from notifications.delivery.bulk import id_filters
from notifications.delivery.channels import Limits, Message, SendResult


def topic_for(key: str) -> str:
    # Topic: at most 32 characters of the URL-safe base64 alphabet.
    return base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()).decode()[:32]


@dataclass
class Device:
    endpoint: str
    p256dh: str
    auth: str


class WebPushChannel:
    name = "webpush"
    honours_idempotency = True  # through Topic, for messages the device has not fetched yet
    limits = Limits()

    def __init__(self, vapid_private_key: str, subject: str, *, ttl: int = 24 * 3600) -> None:
        self.vapid_private_key = vapid_private_key
        self.subject = subject
        self.ttl = ttl

    async def addresses(self, session: AsyncSession, user_id: int) -> list[Any]:
        rows = (
            await session.execute(
                sa.select(PushSubscription).where(PushSubscription.user_id == user_id)
            )
        ).scalars()
        return [Device(r.endpoint, r.p256dh, r.auth) for r in rows]

    async def addresses_many(
        self, session: AsyncSession, user_ids: list[int]
    ) -> dict[int, list[Any]]:
        found: dict[int, list[Any]] = {}
        t = PushSubscription
        for where in id_filters(session, PushSubscription.user_id, user_ids):
            rows = await session.execute(
                sa.select(t.user_id, t.endpoint, t.p256dh, t.auth).where(where).order_by(t.id)
            )
            for r in rows.all():
                found.setdefault(r.user_id, []).append(Device(r.endpoint, r.p256dh, r.auth))
        return found

    async def send(self, message: Message) -> SendResult:
        payload = json.dumps(
            {
                "title": message.title,
                "body": message.body,
                "url": message.url,
                "key": message.idempotency_key,
            },
            ensure_ascii=False,
        )
        delivered = 0
        gone: list[Any] = []
        errors: list[str] = []
        for device in message.addresses:
            try:
                await webpush_async(
                    {
                        "endpoint": device.endpoint,
                        "keys": {"p256dh": device.p256dh, "auth": device.auth},
                    },
                    data=payload,
                    vapid_private_key=self.vapid_private_key,
                    vapid_claims={"sub": self.subject},
                    ttl=self.ttl,
                    headers={
                        "Topic": topic_for(message.idempotency_key),
                        "Urgency": "high" if message.critical else "normal",
                    },
                    timeout=10,
                )
                delivered += 1
            except WebPushException as exc:
                status = getattr(exc.response, "status", None) or getattr(
                    exc.response, "status_code", None
                )
                if status in (404, 410):
                    gone.append(device.endpoint)
                else:
                    errors.append(f"HTTP {status}")
            except Exception as exc:  # noqa: BLE001 - a network error is a retry, not a crash
                errors.append(type(exc).__name__)
        if delivered:
            return SendResult("sent", detail="; ".join(errors) or None, gone_addresses=gone)
        if gone and not errors:
            return SendResult("gone", detail="subscription gone (404/410)", gone_addresses=gone)
        return SendResult("retry", detail="; ".join(errors) or "no device", gone_addresses=gone)
