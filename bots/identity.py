"""Who a platform user is in Bedside, and how the two get bound.

Staff are bound by the directory's mobile number (the platform tells which user id has
the mobile Bedside knows) or by a one-time link: an unbound user who taps a card gets a
link; opening it while signed in to Bedside binds the two. Links are stored hashed, expire
after `LINK_TTL`, and work once.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor
from api.domain.people import (
    bind_external_identity,
    external_id_for,
    require_staff,
    user_for_external_id,
)
from api.errors import DomainError, ErrorCode
from api.models.base import utcnow
from api.models.bots import BotBindingLink
from api.models.people import User
from api.services import Services
from integrations.platforms import PlatformError, get_platforms

log = logging.getLogger("bedside.bots")

LINK_TTL = timedelta(hours=24)
STAFF_PLATFORMS = ("dingtalk", "wecom")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def actor_for(session: AsyncSession, platform: str, external_id: str) -> Actor | None:
    user = await user_for_external_id(session, platform, external_id)
    if user is None or not user.is_active:
        return None
    return Actor.from_user(user, via=platform)


async def create_binding_link(
    session: AsyncSession, services: Services, platform: str, external_id: str
) -> str:
    """A one-time link (URL) that binds `external_id` to whoever opens it signed in."""
    token = secrets.token_urlsafe(24)
    session.add(
        BotBindingLink(
            token_hash=_hash(token),
            platform=platform,
            external_id=external_id,
            expires_at=utcnow() + LINK_TTL,
        )
    )
    await session.flush()
    return f"{services.settings.public_url.rstrip('/')}/bind?token={token}"


async def redeem_binding_link(
    session: AsyncSession, token: str, *, actor: Actor
) -> tuple[str, str]:
    """Bind the link's platform id to the actor; (platform, external id). Staff only:
    refused before the link is even looked at, so nothing about it is told or used up."""
    require_staff(
        actor, "只有医院职工可以绑定钉钉或企业微信 / only hospital staff may bind DingTalk or WeCom"
    )
    link = (
        await session.execute(
            sa.select(BotBindingLink)
            .where(BotBindingLink.token_hash == _hash(token))
            .with_for_update()
        )
    ).scalar_one_or_none()
    if link is None or link.used_at is not None or link.expires_at < utcnow():
        raise DomainError(
            ErrorCode.NOT_FOUND,
            "绑定链接无效或已过期 / the binding link is invalid or expired",
            field="token",
        )
    user = await session.get(User, actor.user_id)
    assert user is not None
    await bind_external_identity(
        session, user, provider=link.platform, external_id=link.external_id
    )
    link.used_at = utcnow()
    link.used_by_id = actor.user_id
    return link.platform, link.external_id


async def bind_by_directory_mobile(
    session: AsyncSession, services: Services, platform: str, user: User
) -> str | None:
    """Ask the platform's directory which user id has this user's mobile, and bind it."""
    if not user.mobile:
        return None
    client = getattr(get_platforms(services), platform)
    if not client.configured:
        return None
    try:
        external_id = await client.userid_by_mobile(user.mobile)
    except PlatformError as exc:
        log.warning("directory look-up on %s failed: %s", platform, exc)
        return None
    if not external_id:
        return None
    if await user_for_external_id(session, platform, external_id) is not None:
        return None  # already someone's: binding stays explicit
    await bind_external_identity(session, user, provider=platform, external_id=external_id)
    return external_id


async def external_id_or_bind(
    session: AsyncSession, services: Services, platform: str, user: User
) -> str | None:
    assert user.id is not None
    return await external_id_for(session, user.id, platform) or await bind_by_directory_mobile(
        session, services, platform, user
    )
