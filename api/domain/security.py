"""Login throttling per client address, single-token sign-out and the password policy.

Per-user lockout lives on the user row (people.login). Per-address limits live in the
database so every API process of a fleet counts the same failures: an address that has
failed `login_max_failures_per_address` times within the window is refused (RATE_LIMITED)
without checking any password, until the window passes.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import append_event
from api.auth import Actor, PasswordHashing, issue_token
from api.errors import DomainError, ErrorCode, invalid
from api.models.base import utcnow
from api.models.people import User
from api.models.security import LoginThrottle, RevokedToken
from api.settings import Settings

RATE_LIMITED_MESSAGE = "登录尝试过于频繁，请稍后再试 / too many login attempts, try again later"


def _address_key(address: str | None) -> str | None:
    return address[:64] if address else None


async def check_address(session: AsyncSession, settings: Settings, address: str | None) -> None:
    """Raise RATE_LIMITED when the address has used up its failures for the window."""
    key = _address_key(address)
    if key is None:
        return
    row = await session.get(LoginThrottle, key)
    if row is None:
        return
    window = timedelta(seconds=settings.login_address_window_seconds)
    if (
        row.window_started_at + window > utcnow()
        and row.failures >= settings.login_max_failures_per_address
    ):
        raise DomainError(ErrorCode.RATE_LIMITED, RATE_LIMITED_MESSAGE)


async def record_address_failure(
    session: AsyncSession, settings: Settings, address: str | None
) -> None:
    """Count a failed login from `address`; a new window starts when the old one has passed."""
    key = _address_key(address)
    if key is None:
        return
    now = utcnow()
    window = timedelta(seconds=settings.login_address_window_seconds)
    # Insert-if-missing then lock the row: concurrent failures from the fleet all count.
    dialect = session.bind.dialect.name if session.bind is not None else "postgresql"
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    await session.execute(
        insert(LoginThrottle)
        .values(address=key, window_started_at=now, failures=0)
        .on_conflict_do_nothing()
    )
    row = (
        await session.execute(
            sa.select(LoginThrottle).where(LoginThrottle.address == key).with_for_update()
        )
    ).scalar_one()
    if row.window_started_at + window <= now:
        row.window_started_at, row.failures = now, 0
    row.failures += 1
    await session.flush()


async def revoke_token(
    session: AsyncSession, *, jti: str, user_id: int, expires_at: datetime
) -> None:
    """Sign out one token (this device) while the user's other tokens stay valid."""
    if await session.get(RevokedToken, jti) is None:
        session.add(RevokedToken(jti=jti, user_id=user_id, expires_at=expires_at))
    # Rows past their expiry protect nothing: the token is refused as expired anyway.
    await session.execute(sa.delete(RevokedToken).where(RevokedToken.expires_at < utcnow()))
    await session.flush()


PASSWORD_CLASSES = (
    re.compile(r"[a-z]"),
    re.compile(r"[A-Z]"),
    re.compile(r"[0-9]"),
    re.compile(r"[^a-zA-Z0-9]"),
)


def check_password_policy(settings: Settings, password: str, *, username: str) -> None:
    """At least `password_min_length` characters from 3 of 4 classes, not containing the username."""
    field = "newPassword"
    if len(password) < settings.password_min_length:
        raise invalid(
            field,
            f"密码至少 {settings.password_min_length} 位 / at least {settings.password_min_length} characters",
        )
    if len(password) > 256:
        raise invalid(field, "密码过长 / password too long")
    if sum(1 for pattern in PASSWORD_CLASSES if pattern.search(password)) < 3:
        raise invalid(
            field,
            "密码须包含大写字母、小写字母、数字、符号中的至少三类 / use at least 3 of: upper case, lower case, digits, symbols",
        )
    if username and username.lower() in password.lower():
        raise invalid(field, "密码不能包含用户名 / the password must not contain the username")


async def change_password(
    session: AsyncSession,
    settings: Settings,
    hashing: PasswordHashing,
    user: User,
    *,
    current_password: str,
    new_password: str,
    actor: Actor,
) -> str:
    """Set a new password, sign out every other token, return a fresh token for this device."""
    if not hashing.verify(user.password_hash, current_password):
        # VALIDATION, not UNAUTHENTICATED: the session is fine, an input is wrong.
        raise invalid("currentPassword", "当前密码错误 / current password is wrong")
    check_password_policy(settings, new_password, username=user.username)
    if hashing.verify(user.password_hash, new_password):
        raise invalid(
            "newPassword",
            "新密码不能与当前密码相同 / the new password must differ from the current one",
        )
    user.password_hash = hashing.hash(new_password)
    user.password_must_change = False
    user.token_version += 1
    await append_event(
        session, f"user:{user.id}", "password_changed", actor=actor, data={"user_id": user.id}
    )
    await session.flush()
    return issue_token(settings, user)
