"""An HTTP endpoint of the hospital's own (integration platform, SMS gateway, a local
sink in tests and benches). Every message carries our key in `Idempotency-Key`; the
receiver is expected to drop a repeat, which makes a re-send after a crash safe."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.channels import Limits, Message, SendResult


class WebhookChannel:
    name = "webhook"
    honours_idempotency = True
    limits = Limits()

    def __init__(self, url: str, *, client: httpx.AsyncClient | None = None, timeout: float = 10.0) -> None:
        self.url = url
        self.client = client or httpx.AsyncClient(timeout=timeout)

    async def addresses(self, session: AsyncSession, user_id: int) -> list[Any]:
        return [user_id]

    async def addresses_many(self, session: AsyncSession, user_ids: list[int]) -> dict[int, list[Any]]:
        return {u: [u] for u in user_ids}

    async def send(self, message: Message) -> SendResult:
        try:
            response = await self.client.post(
                self.url,
                json={
                    "recipient_id": message.recipient_id,
                    "title": message.title,
                    "body": message.body,
                    "url": message.url,
                    "critical": message.critical,
                },
                headers={"Idempotency-Key": message.idempotency_key},
            )
        except httpx.HTTPError as exc:
            return SendResult("retry", detail=f"{type(exc).__name__}")
        if response.status_code >= 500 or response.status_code == 429:
            return SendResult("retry", detail=f"HTTP {response.status_code}")
        if response.status_code >= 400:
            return SendResult("failed", detail=f"HTTP {response.status_code}")
        return SendResult("sent", external_id=response.headers.get("x-message-id"))

    async def aclose(self) -> None:
        await self.client.aclose()
