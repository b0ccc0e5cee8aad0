"""People: login, users, departments, roles and external identities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import append_event
from api.auth import Actor, PasswordHashing, issue_token
from api.errors import DomainError, ErrorCode, forbidden, invalid, not_found
from api.models.base import utcnow
from api.models.people import Department, ExternalIdentity, Role, User
from api.settings import Settings

BAD_LOGIN = "用户名或密码错误 / wrong username or password"


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
    if user is None or not user.is_active:
        hashing.verify(None, password)
        await security.record_address_failure(session, settings, address)
        return LoginOutcome(None, error=DomainError(ErrorCode.UNAUTHENTICATED, BAD_LOGIN))
    now = utcnow()
    if user.locked_until and user.locked_until > now:
        await security.record_address_failure(session, settings, address)
        return LoginOutcome(
            user,
            error=DomainError(
                ErrorCode.ACCOUNT_LOCKED,
                "账户已临时锁定，请稍后再试 / account locked, try again later",
            ),
        )
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


def _require_admin(actor: Actor) -> None:
    # The system actor (the `bedside` command run by the operator) may act as admin.
    if actor.user_id and not actor.is_admin:
        raise forbidden("仅系统管理员可维护人员与科室 / only an administrator manages staff")


def _diff(row: object, values: dict[str, object]) -> dict[str, list[object]]:
    return {
        name: [getattr(row, name), value]
        for name, value in values.items()
        if getattr(row, name) != value
    }


ROLE_CODES = {str(r) for r in Role}


def check_roles(roles: list[str]) -> list[str]:
    unknown = [r for r in roles if r not in ROLE_CODES]
    if unknown:
        raise invalid("roles", f"未知角色 / unknown role: {', '.join(unknown)}")
    return sorted(set(roles), key=roles.index)


async def department_by_code(session: AsyncSession, code: str) -> Department | None:
    return (
        await session.execute(sa.select(Department).where(Department.code == code))
    ).scalar_one_or_none()


async def create_department(
    session: AsyncSession, *, code: str, name: str, name_en: str = "", actor: Actor
) -> Department:
    _require_admin(actor)
    code, name = code.strip(), name.strip()
    if not code or not name:
        raise invalid("code" if not code else "name", "不能为空 / required")
    if await department_by_code(session, code) is not None:
        raise DomainError(ErrorCode.CONFLICT, f"科室编码已存在 / code exists: {code}", "code")
    dept = Department(code=code, name=name, name_en=name_en.strip())
    session.add(dept)
    await session.flush()
    await append_event(
        session, f"department:{dept.id}", "created", actor=actor, data={"code": code, "name": name}
    )
    return dept


async def update_department(
    session: AsyncSession, dept: Department, *, name: str, name_en: str = "", actor: Actor
) -> dict[str, list[object]]:
    """Rename a department; returns the changed fields (old, new), empty when nothing changed."""
    _require_admin(actor)
    if not name.strip():
        raise invalid("name", "不能为空 / required")
    changes = _diff(dept, {"name": name.strip(), "name_en": name_en.strip()})
    if changes:
        for key, (_, new) in changes.items():
            setattr(dept, key, new)
        await session.flush()
        await append_event(
            session, f"department:{dept.id}", "updated", actor=actor, data={"changes": changes}
        )
    return changes


async def set_department_head(
    session: AsyncSession, dept: Department, head: User | None, *, actor: Actor
) -> bool:
    _require_admin(actor)
    new = head.id if head is not None else None
    if dept.head_user_id == new:
        return False
    if head is not None and head.department_id != dept.id:
        raise invalid("head", "科主任须为本科室人员 / the head must belong to the department")
    old, dept.head_user_id = dept.head_user_id, new
    await session.flush()
    await append_event(
        session, f"department:{dept.id}", "head_set", actor=actor, data={"old": old, "new": new}
    )
    return True


async def create_user(
    session: AsyncSession,
    hashing: PasswordHashing | None,
    *,
    username: str,
    display_name: str,
    department_id: int | None,
    roles: list[str],
    actor: Actor,
    mobile: str | None = None,
    job_number: str | None = None,
    initial_password: str | None = None,
    password_hash: str | None = None,
) -> User:
    """A new account. With an initial password it must be changed at the first sign-in;
    without one the user signs in only through DingTalk / WeCom. A caller creating many
    accounts with one initial password may pass its hash (argon2 is deliberately slow)."""
    _require_admin(actor)
    username = username.strip()
    if not username or not display_name.strip():
        raise invalid("username" if not username else "displayName", "不能为空 / required")
    exists = (await session.execute(sa.select(User.id).where(User.username == username))).first()
    if exists is not None:
        raise DomainError(
            ErrorCode.CONFLICT, f"用户名已存在 / username exists: {username}", "username"
        )
    if job_number:
        await _check_job_number_free(session, job_number, None)
    if initial_password and password_hash is None:
        assert hashing is not None
        password_hash = hashing.hash(initial_password)
    user = User(
        username=username,
        display_name=display_name.strip(),
        department_id=department_id,
        roles=check_roles(roles),
        mobile=mobile or None,
        job_number=job_number or None,
        password_hash=password_hash,
        password_must_change=password_hash is not None,
    )
    session.add(user)
    await session.flush()
    await append_event(
        session,
        f"user:{user.id}",
        "created",
        actor=actor,
        data={
            "username": username,
            "department_id": department_id,
            "roles": user.roles,
            "password": password_hash is not None,
        },
    )
    return user


async def _check_job_number_free(
    session: AsyncSession, job_number: str, user_id: int | None
) -> None:
    other = (
        await session.execute(sa.select(User.id).where(User.job_number == job_number))
    ).scalar_one_or_none()
    if other is not None and other != user_id:
        raise DomainError(
            ErrorCode.CONFLICT, f"工号已被使用 / job number in use: {job_number}", "jobNumber"
        )


async def update_user(
    session: AsyncSession,
    user: User,
    *,
    display_name: str,
    department_id: int | None,
    roles: list[str],
    actor: Actor,
    mobile: str | None = None,
    job_number: str | None = None,
    superior_id: int | None = None,
    is_active: bool = True,
) -> dict[str, list[object]]:
    """Change a user's profile; returns the changed fields (old, new). Deactivating signs
    the user out everywhere."""
    _require_admin(actor)
    if job_number:
        await _check_job_number_free(session, job_number, user.id)
    if superior_id is not None and superior_id == user.id:
        raise invalid("superior", "上级不能是本人 / a user cannot be their own superior")
    changes = _diff(
        user,
        {
            "display_name": display_name.strip(),
            "department_id": department_id,
            "roles": check_roles(roles),
            "mobile": mobile or None,
            "job_number": job_number or None,
            "superior_id": superior_id,
            "is_active": is_active,
        },
    )
    if changes:
        for key, (_, new) in changes.items():
            setattr(user, key, new)
        if "is_active" in changes and not is_active:
            user.token_version += 1
        await session.flush()
        await append_event(
            session, f"user:{user.id}", "updated", actor=actor, data={"changes": changes}
        )
    return changes


async def unlock_user(session: AsyncSession, user: User, *, actor: Actor) -> bool:
    """End a lockout now (and forget the failures counted towards the next one). Returns
    whether the account was locked."""
    _require_admin(actor)
    was_locked = user.locked_until is not None and user.locked_until > utcnow()
    user.locked_until = None
    user.failed_logins = 0
    await session.flush()
    await append_event(
        session,
        f"user:{user.id}",
        "unlocked",
        actor=actor,
        data={"user_id": user.id, "was_locked": was_locked},
    )
    return was_locked


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


async def users_with_role(
    session: AsyncSession, role: str | Role, *, department_id: int | None = None
) -> list[User]:
    users = (
        await session.execute(sa.select(User).where(User.is_active.is_(True)).order_by(User.id))
    ).scalars()
    return [
        u
        for u in users
        if str(role) in (u.roles or [])
        and (department_id is None or u.department_id == department_id)
    ]


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


async def bind_external_identity(
    session: AsyncSession, user: User, *, provider: str, external_id: str
) -> ExternalIdentity:
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
