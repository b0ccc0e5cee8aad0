"""Login throttling per client address, single-token sign-out and the password policy.

Per-user lockout lives on the user row (people.login). Per-address limits live in the
database so every API process of a fleet counts the same failures: an address that has
failed `login_max_failures_per_address` times within the window is refused (RATE_LIMITED)
without checking any password, until the window passes.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
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
    await _count_failure(session, key, timedelta(seconds=settings.login_address_window_seconds))


def _unknown_user_key(username: str) -> str:
    # Not an address (no colon-free "user:" address exists); hashed, so the table does
    # not collect the usernames people mistype.
    return "user:" + hashlib.sha256(username.encode("utf-8", "replace")).hexdigest()[:40]


async def unknown_username_locked(session: AsyncSession, settings: Settings, username: str) -> bool:
    """An unknown username that failed `login_max_failures` times is "locked" for the lockout
    period exactly like a real account, so ACCOUNT_LOCKED does not tell which usernames exist."""
    row = await session.get(LoginThrottle, _unknown_user_key(username))
    return (
        row is not None
        and row.failures >= settings.login_max_failures
        and row.window_started_at + timedelta(seconds=settings.login_lockout_seconds) > utcnow()
    )


async def record_unknown_username_failure(
    session: AsyncSession, settings: Settings, username: str
) -> None:
    await _count_failure(
        session, _unknown_user_key(username), timedelta(seconds=settings.login_lockout_seconds)
    )


async def _count_failure(session: AsyncSession, key: str, window: timedelta) -> None:
    now = utcnow()
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


ACCOUNT_LOCKED_MESSAGE = "账户已临时锁定，请稍后再试 / account locked, try again later"


@dataclass
class PasswordChange:
    """A new token, or why not. A wrong current password is still a write (the failure
    counter, as for login), so it is returned for the caller to commit, not raised."""

    token: str | None = None
    error: DomainError | None = None


async def change_password(
    session: AsyncSession,
    settings: Settings,
    hashing: PasswordHashing,
    user: User,
    *,
    current_password: str,
    new_password: str,
    actor: Actor,
    address: str | None = None,
) -> PasswordChange:
    """Set a new password, sign out every other token, return a fresh token for this device.

    Wrong current passwords count like wrong logins (a stolen session must not be a
    password-guessing oracle): they add to the account's failures and the address's, lock
    the account at `login_max_failures`, and a locked account checks no password."""
    now = utcnow()
    if user.locked_until and user.locked_until > now:
        return PasswordChange(error=DomainError(ErrorCode.ACCOUNT_LOCKED, ACCOUNT_LOCKED_MESSAGE))
    try:
        await check_address(session, settings, address)
    except DomainError as exc:
        return PasswordChange(error=exc)
    if not hashing.verify(user.password_hash, current_password):
        await record_address_failure(session, settings, address)
        user.failed_logins += 1
        if user.failed_logins >= settings.login_max_failures:
            user.locked_until = now + timedelta(seconds=settings.login_lockout_seconds)
            user.failed_logins = 0
        await session.flush()
        # VALIDATION, not UNAUTHENTICATED: the session is fine, an input is wrong.
        return PasswordChange(
            error=invalid("currentPassword", "当前密码错误 / current password is wrong")
        )
    user.failed_logins = 0
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
    return PasswordChange(token=issue_token(settings, user))
