"""Web push subscriptions (one per browser/device) and the public VAPID key."""

from __future__ import annotations

import base64
from urllib.parse import urlparse

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from py_vapid import Vapid
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor
from api.errors import invalid
from api.models.notifications import PushSubscription


def _b64url_decode(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))


def vapid_public_key(private_key: str | None) -> str | None:
    """The applicationServerKey the browser subscribes with (URL-safe base64, uncompressed P-256)."""
    if not private_key:
        return None
    key = Vapid.from_string(private_key=private_key)
    raw = key.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def register_subscription(
    session: AsyncSession,
    actor: Actor,
    *,
    endpoint: str,
    p256dh: str,
    auth: str,
    user_agent: str | None = None,
) -> PushSubscription:
    """Store (or move to this user) one device's subscription; registering twice is a no-op."""
    parsed = urlparse(endpoint)
    if parsed.scheme not in ("https", "http") or not parsed.netloc or len(endpoint) > 1000:
        raise invalid("endpoint", "推送地址无效 / invalid push endpoint")
    try:
        if len(_b64url_decode(p256dh)) != 65:
            raise ValueError
    except ValueError:
        raise invalid("p256dh", "设备公钥无效 / invalid p256dh key") from None
    try:
        if len(_b64url_decode(auth)) != 16:
            raise ValueError
    except ValueError:
        raise invalid("auth", "设备认证密钥无效 / invalid auth secret") from None
    existing = (
        await session.execute(
            sa.select(PushSubscription).where(PushSubscription.endpoint == endpoint)
        )
    ).scalar_one_or_none()
    if existing is not None:
        existing.user_id, existing.p256dh, existing.auth = actor.user_id, p256dh, auth
        existing.user_agent = (user_agent or existing.user_agent or "")[:300] or None
        await session.flush()
        return existing
    subscription = PushSubscription(
        user_id=actor.user_id,
        endpoint=endpoint,
        p256dh=p256dh,
        auth=auth,
        user_agent=(user_agent or "")[:300] or None,
    )
    session.add(subscription)
    await session.flush()
    return subscription
