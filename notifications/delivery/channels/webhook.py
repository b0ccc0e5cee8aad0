"""An HTTP endpoint of the hospital's own (integration platform, SMS gateway, a local
sink in tests and benches). Every message carries our key in `Idempotency-Key`; the
receiver is expected to drop a repeat, which makes a re-send after a crash safe.

Sent with aiohttp: a sweep keeps up to `connections` requests in flight to one endpoint,
and aiohttp's pool stays cheap at that width (httpx's pool costs grow with the number of
open connections, which held a fan-out to a few hundred messages a second).
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.delivery.channels import Limits, Message, SendResult


class WebhookChannel:
    name = "webhook"
    honours_idempotency = True
    limits = Limits()

    def __init__(self, url: str, *, timeout: float = 10.0, connections: int = 50) -> None:
        self.url = url
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        # Made on first use: a session belongs to the event loop that runs the sends.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.connections),
                timeout=self.timeout,
                raise_for_status=False,
            )
        return self._session

    async def addresses(self, session: AsyncSession, user_id: int) -> list[Any]:
        return [user_id]

    async def addresses_many(
        self, session: AsyncSession, user_ids: list[int]
    ) -> dict[int, list[Any]]:
        return {u: [u] for u in user_ids}

    async def send(self, message: Message) -> SendResult:
        body = {
            "recipient_id": message.recipient_id,
            "title": message.title,
            "body": message.body,
            "url": message.url,
            "critical": message.critical,
        }
        headers = {"Idempotency-Key": message.idempotency_key, "Content-Type": "application/json"}
        try:
            async with self._client().post(
                self.url, data=json.dumps(body, ensure_ascii=False).encode(), headers=headers
            ) as response:
                await response.read()
                status, external_id = response.status, response.headers.get("x-message-id")
        except (aiohttp.ClientError, TimeoutError) as exc:
            return SendResult("retry", detail=f"{type(exc).__name__}")
        if status >= 500 or status == 429:
            return SendResult("retry", detail=f"HTTP {status}")
        if status >= 400:
            return SendResult("failed", detail=f"HTTP {status}")
        return SendResult("sent", external_id=external_id)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
