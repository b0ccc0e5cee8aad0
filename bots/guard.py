"""The checks every signed callback passes before anything else: fresh and never seen.

The signature is checked by the platform's crypto (in each bot); here the timestamp must
lie within `callback_max_age_seconds` of now and the (timestamp, nonce) pair must not have
been seen before. Seen pairs live in Redis (SET NX with a TTL of twice the window) when
Redis is configured (and answers), else in the `bot_nonce` table. A pair is released again when
processing fails, so the platform's own retry of a failed delivery is not refused.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import sqlalchemy as sa
from redis.exceptions import RedisError
from sqlalchemy.exc import IntegrityError

from api.models.base import utcnow
from api.models.bots import BotNonce
from api.services import Services
from integrations.platforms import get_platforms

log = logging.getLogger("bedside.bots")


class CallbackRefused(Exception):
    """Forged, expired or replayed: answered with 403 and nothing changes."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_fresh(services: Services, timestamp: str | None, *, millis: bool = False) -> None:
    try:
        value = float(timestamp or "")
    except ValueError:
        raise CallbackRefused("bad timestamp") from None
    seconds = value / 1000 if millis else value
    if abs(time.time() - seconds) > services.settings.callback_max_age_seconds:
        raise CallbackRefused("expired timestamp")


def _nonce_key(timestamp: str, nonce: str) -> str:
    return f"{timestamp}:{nonce}"[:160]


async def claim_nonce(services: Services, platform: str, timestamp: str, nonce: str | None) -> None:
    """Remember the nonce; a nonce seen before is a replay."""
    if not nonce:
        raise CallbackRefused("missing nonce")
    key = _nonce_key(timestamp, nonce)
    ttl = services.settings.callback_max_age_seconds * 2
    redis = get_platforms(services).redis
    if redis is not None:
        try:
            fresh = await redis.set(f"bedside:bot-nonce:{platform}:{key}", "1", nx=True, ex=ttl)
        except RedisError as exc:  # Redis down: the table keeps answering
            log.warning("nonce store in Redis unavailable (%s); using the database", exc)
        else:
            if not fresh:
                raise CallbackRefused("replayed nonce")
            return
    try:
        async with services.db.transaction() as session:
            session.add(BotNonce(platform=platform, nonce=key, seen_at=utcnow()))
    except IntegrityError:
        raise CallbackRefused("replayed nonce") from None


async def release_nonce(services: Services, platform: str, timestamp: str, nonce: str) -> None:
    key = _nonce_key(timestamp, nonce)
    redis = get_platforms(services).redis
    if redis is not None:
        try:
            await redis.delete(f"bedside:bot-nonce:{platform}:{key}")
        except RedisError:
            pass  # it may have gone to the table
    async with services.db.transaction() as session:
        await session.execute(
            sa.delete(BotNonce).where(BotNonce.platform == platform, BotNonce.nonce == key)
        )


async def prune_nonces(services: Services) -> int:
    """Drop table-kept nonces older than twice the window (the timestamp check covers them)."""
    cutoff = utcnow() - timedelta(seconds=services.settings.callback_max_age_seconds * 2)
    async with services.db.transaction() as session:
        result = await session.execute(sa.delete(BotNonce).where(BotNonce.seen_at < cutoff))
    return result.rowcount or 0  # type: ignore[attr-defined]
