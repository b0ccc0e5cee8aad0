"""People: login, users, departments, roles and external identities."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import append_event, open_streams
from api.auth import Actor, PasswordHashing, issue_token
from api.errors import DomainError, ErrorCode, forbidden, invalid, not_found
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
    return LoginOutcome(
        user,
        token=issue_token(
            settings, user, now=now, password_change_required=user.password_must_change
        ),
    )


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


@dataclass
class NewUser:
    """One account for `create_users`. `superior` names a user by username: one already
    there or one created in the same call."""

    username: str
    display_name: str
    roles: list[str]
    department_id: int | None = None
    mobile: str | None = None
    job_number: str | None = None
    password_hash: str | None = None
    superior: str | None = None


async def create_users(session: AsyncSession, specs: list[NewUser], *, actor: Actor) -> list[User]:
    """New accounts, in a few batched statements however many. One with a password hash
    (an initial password) must change it at the first sign-in; one without signs in
    through DingTalk / WeCom only. Each account's history starts with its creation."""
    _require_admin(actor)
    if not specs:
        return []
    seen: set[str] = set()
    numbers: set[str] = set()
    for spec in specs:
        spec.username = spec.username.strip()
        if not spec.username or not spec.display_name.strip():
            raise invalid("username" if not spec.username else "displayName", "不能为空 / required")
        if spec.username in seen:
            raise DomainError(
                ErrorCode.CONFLICT, f"用户名重复 / username twice: {spec.username}", "username"
            )
        seen.add(spec.username)
        if spec.job_number:
            if spec.job_number in numbers:
                raise DomainError(
                    ErrorCode.CONFLICT,
                    f"工号重复 / job number twice: {spec.job_number}",
                    "jobNumber",
                )
            numbers.add(spec.job_number)
        spec.roles = check_roles(spec.roles)
    clash = (
        await session.execute(
            sa.select(User.username, User.job_number).where(
                sa.or_(User.username.in_(seen), User.job_number.in_(numbers))
            )
        )
    ).first()
    if clash is not None:
        field, value = ("username", clash[0]) if clash[0] in seen else ("jobNumber", clash[1])
        raise DomainError(ErrorCode.CONFLICT, f"已存在 / exists: {value}", field)
    users = [
        User(
            username=spec.username,
            display_name=spec.display_name.strip(),
            department_id=spec.department_id,
            roles=spec.roles,
            mobile=spec.mobile or None,
            job_number=spec.job_number or None,
            password_hash=spec.password_hash,
            password_must_change=spec.password_hash is not None,
        )
        for spec in specs
    ]
    session.add_all(users)
    await session.flush()
    wanted = {s.superior for s in specs if s.superior}
    superiors = {u.username: u.id for u in users if u.username in wanted}
    missing = wanted - set(superiors)
    if missing:
        found = await session.execute(
            sa.select(User.username, User.id).where(User.username.in_(missing))
        )
        superiors.update({name: uid for name, uid in found.all()})
    for spec, user in zip(specs, users, strict=True):
        if spec.superior:
            if spec.superior not in superiors:
                raise invalid("superior", f"上级用户不存在 / no such user: {spec.superior}")
            if superiors[spec.superior] == user.id:
                raise invalid("superior", "上级不能是本人 / a user cannot be their own superior")
            user.superior_id = superiors[spec.superior]
    await open_streams(
        session,
        [
            (
                f"user:{user.id}",
                "created",
                actor,
                {
                    "username": user.username,
                    "department_id": user.department_id,
                    "roles": user.roles,
                    "superior_id": user.superior_id,
                    "password": user.password_hash is not None,
                },
            )
            for user in users
        ],
    )
    return users


async def create_user(session: AsyncSession, spec: NewUser, *, actor: Actor) -> User:
    return (await create_users(session, [spec], actor=actor))[0]


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
    if job_number and job_number != user.job_number:
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


async def deactivate_user(session: AsyncSession, user: User, *, actor: Actor, reason: str) -> None:
    """The person left: no more sign-in (every token revoked), kept for the history."""
    _require_admin(actor)
    if not user.is_active:
        return
    user.is_active = False
    user.token_version += 1
    await session.flush()
    await append_event(
        session, f"user:{user.id}", "deactivated", actor=actor, data={"reason": reason}
    )


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


async def bind_external_identities(
    session: AsyncSession, bindings: list[tuple[User, str, str]]
) -> list[ExternalIdentity]:
    """Bind many (user, provider, external id) at once, refusing one that is taken."""
    if not bindings:
        return []
    taken = (
        await session.execute(
            sa.select(ExternalIdentity).where(
                sa.tuple_(ExternalIdentity.provider, ExternalIdentity.external_id).in_(
                    [(provider, external_id) for _, provider, external_id in bindings]
                )
            )
        )
    ).scalars()
    owners = {(i.provider, i.external_id): i.user_id for i in taken}
    rows = []
    for user, provider, external_id in bindings:
        owner = owners.get((provider, external_id))
        if owner is not None and owner != user.id:
            raise DomainError(
                ErrorCode.CONFLICT,
                f"该账号已绑定其他用户 / already bound to another user: {external_id}",
                field="externalId",
            )
        if owner is None:
            assert user.id is not None
            rows.append(
                ExternalIdentity(user_id=user.id, provider=provider, external_id=external_id)
            )
            owners[(provider, external_id)] = user.id
    session.add_all(rows)
    await session.flush()
    return rows


async def revoke_tokens(session: AsyncSession, user: User, *, actor: Actor) -> None:
    """Log the user out everywhere."""
    user.token_version += 1
    await session.flush()
