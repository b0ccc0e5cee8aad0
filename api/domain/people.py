"""People: login, users, departments, roles and external identities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor, PasswordHashing, issue_token
from api.errors import DomainError, ErrorCode, not_found
from api.models.base import utcnow
from api.models.people import Department, ExternalIdentity, Role, User
from api.settings import Settings

BAD_LOGIN = "用户名或密码错误 / wrong username or password"

# Every role but `patient`. Who holds one (and not `patient`) is staff: only staff may hold,
# sign or copy an approval, or bind a DingTalk / WeCom id.
STAFF_ROLES = frozenset(r.value for r in Role if r is not Role.PATIENT)
STAFF_ONLY = "仅限医院职工 / hospital staff only"


def user_is_staff(user: User) -> bool:
    """An active user with a staff role and no patient role."""
    roles = set(user.roles or [])
    return bool(user.is_active and roles & STAFF_ROLES and Role.PATIENT.value not in roles)


def actor_is_staff(actor: Actor) -> bool:
    return bool(actor.roles & STAFF_ROLES) and not actor.has_role(Role.PATIENT)


def require_staff(actor: Actor, message: str = STAFF_ONLY) -> None:
    """FORBIDDEN for a patient (or anyone without a staff role)."""
    if not actor_is_staff(actor):
        raise DomainError(ErrorCode.FORBIDDEN, message)


@dataclass
class LoginOutcome:
    """A login either issues a token or says why not; a failure is still a write
    (the failure counter), so it is returned for the caller to commit, not raised."""

    user: User | None
    token: str | None = None
    error: DomainError | None = None


async def login(
    session: AsyncSession,
    settings: Settings,
    hashing: PasswordHashing,
    *,
    username: str,
    password: str,
    address: str | None = None,
) -> LoginOutcome:
    """Check the password and issue a token; lock the account after repeated failures,
    and refuse an address (every account) after repeated failures from it."""
    from api.domain import security  # login throttling per address

    try:
        await security.check_address(session, settings, address)
    except DomainError as exc:
        return LoginOutcome(None, error=exc)
    user = (
        await session.execute(sa.select(User).where(User.username == username).with_for_update())
    ).scalar_one_or_none()
    locked = DomainError(ErrorCode.ACCOUNT_LOCKED, security.ACCOUNT_LOCKED_MESSAGE)
    if user is None or not user.is_active:
        # Answered as for a real account, in the same time: locked after as many failures,
        # and a password checked (against a dummy hash) until then.
        await security.record_address_failure(session, settings, address)
        if await security.unknown_username_locked(session, settings, username):
            return LoginOutcome(None, error=locked)
        hashing.verify(None, password)
        await security.record_unknown_username_failure(session, settings, username)
        return LoginOutcome(None, error=DomainError(ErrorCode.UNAUTHENTICATED, BAD_LOGIN))
    now = utcnow()
    if user.locked_until and user.locked_until > now:
        await security.record_address_failure(session, settings, address)
        return LoginOutcome(user, error=locked)
    if not hashing.verify(user.password_hash, password):
        await security.record_address_failure(session, settings, address)
        user.failed_logins += 1
        if user.failed_logins >= settings.login_max_failures:
            user.locked_until = now + timedelta(seconds=settings.login_lockout_seconds)
            user.failed_logins = 0
        return LoginOutcome(user, error=DomainError(ErrorCode.UNAUTHENTICATED, BAD_LOGIN))
    user.failed_logins = 0
    user.locked_until = None
    return LoginOutcome(user, token=issue_token(settings, user, now=now))


async def get_user(session: AsyncSession, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise not_found("用户", "user")
    return user


async def user_by_username(session: AsyncSession, username: str) -> User:
    user = (
        await session.execute(sa.select(User).where(User.username == username))
    ).scalar_one_or_none()
    if user is None:
        raise DomainError(
            ErrorCode.NOT_FOUND, f"用户不存在 / user not found: {username}", field="username"
        )
    return user


async def search_staff(session: AsyncSession, search: str | None, *, limit: int = 20) -> list[User]:
    """Active staff (not patients) whose name or username matches, for a person picker."""
    term = (search or "").strip()
    if len(term) > 50:
        raise DomainError(ErrorCode.VALIDATION, "搜索词过长 / search term too long", field="search")
    stmt = sa.select(User).where(User.is_active.is_(True)).order_by(User.display_name, User.id)
    if term:
        stmt = stmt.where(
            sa.or_(User.display_name.contains(term), User.username.startswith(term.lower()))
        )
    users = (await session.execute(stmt)).scalars()
    return [u for u in users if set(u.roles or []) - {Role.PATIENT.value}][:limit]


async def users_with_role(
    session: AsyncSession, role: str | Role, *, department_id: int | None = None
) -> list[User]:
    query = sa.select(User).where(User.is_active.is_(True), has_role(session, role))
    if department_id is not None:
        query = query.where(User.department_id == department_id)
    return list((await session.execute(query.order_by(User.id))).scalars())


def has_role(session: AsyncSession, role: str | Role) -> sa.ColumnElement[bool]:
    """SQL: the user's role list holds `role` (filtered by the database, so a role step
    in a hospital of thousands of staff reads only the few who hold it)."""
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        return sa.type_coerce(User.roles, JSONB).contains([str(role)])
    each = sa.func.json_each(User.roles).table_valued("value").alias("role")
    return sa.exists(sa.select(1).select_from(each).where(each.c.value == str(role)))


async def department_head(session: AsyncSession, department_id: int | None) -> User | None:
    if department_id is None:
        return None
    dept = await session.get(Department, department_id)
    if dept is None or dept.head_user_id is None:
        return None
    return await session.get(User, dept.head_user_id)


async def superior_of(session: AsyncSession, user: User) -> User | None:
    """The explicit superior, else the head of the user's department (if not the user)."""
    if user.superior_id:
        return await session.get(User, user.superior_id)
    head = await department_head(session, user.department_id)
    return head if head and head.id != user.id else None


async def user_for_external_id(
    session: AsyncSession, provider: str, external_id: str
) -> User | None:
    row = (
        await session.execute(
            sa.select(User)
            .join(ExternalIdentity, ExternalIdentity.user_id == User.id)
            .where(
                ExternalIdentity.provider == provider, ExternalIdentity.external_id == external_id
            )
        )
    ).scalar_one_or_none()
    return row


async def external_id_for(session: AsyncSession, user_id: int, provider: str) -> str | None:
    return (
        await session.execute(
            sa.select(ExternalIdentity.external_id).where(
                ExternalIdentity.user_id == user_id, ExternalIdentity.provider == provider
            )
        )
    ).scalar_one_or_none()


# The platforms staff work on; a patient is never bound there (only to the Official Account).
STAFF_PROVIDERS = ("dingtalk", "wecom")


async def bind_external_identity(
    session: AsyncSession, user: User, *, provider: str, external_id: str
) -> ExternalIdentity:
    if provider in STAFF_PROVIDERS and not user_is_staff(user):
        raise DomainError(
            ErrorCode.FORBIDDEN,
            "只有医院职工可以绑定钉钉或企业微信 / only hospital staff may bind DingTalk or WeCom",
        )
    existing = (
        await session.execute(
            sa.select(ExternalIdentity).where(
                ExternalIdentity.provider == provider, ExternalIdentity.external_id == external_id
            )
        )
    ).scalar_one_or_none()
    if existing is not None:
        if existing.user_id != user.id:
            raise DomainError(
                ErrorCode.CONFLICT,
                "该账号已绑定其他用户 / already bound to another user",
                field="externalId",
            )
        return existing
    assert user.id is not None
    identity = ExternalIdentity(user_id=user.id, provider=provider, external_id=external_id)
    session.add(identity)
    await session.flush()
    return identity


async def revoke_tokens(session: AsyncSession, user: User, *, actor: Actor) -> None:
    """Log the user out everywhere."""
    user.token_version += 1
    await session.flush()
