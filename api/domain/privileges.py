"""Surgery catalog and surgeons' privileges (手术分级授权, 医师资质管理).

Rules, in one place:
- A grant covers every procedure up to `max_grade`, or exactly one `procedure_code`.
- A grant holds on a moment `at` when it was granted (activated by its approval), `at` is
  inside its validity (from the later of `valid_from` and the grant itself, until
  `valid_until`), it was not revoked before `at`, and no suspension of the surgeon's
  scope covers `at`.
- The terms of a grant are never edited: a change is a revocation and a new grant
  (`replaces_id` links them), so `privilege_held(..., at=day)` answers for any past day.
- Medical affairs and admins manage privileges; a department head may request grants for
  surgeons of their own department. Requests run through the `privilege_grant` approval
  (department → party branch → medical affairs → authorization committee).
- Every state change is appended to the hash chain `privilege:{grant id}` or
  `privilege-suspension:{suspension id}` in the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api import audit
from api.auth import Actor
from api.domain import approvals
from api.errors import DomainError, ErrorCode, forbidden, invalid, not_found
from api.models.approvals import ApprovalInstance
from api.models.audit import AuditEvent
from api.models.base import utcnow
from api.models.people import Role, User
from api.models.privileges import (
    GrantStatus,
    PrivilegeGrant,
    PrivilegeSuspension,
    Procedure,
    ProcedureLevel,
)

SCOPES = ("surgery", "prescribing", "antibiotics", "antitumor", "all")
MANAGERS = (Role.ADMIN, Role.MEDICAL_AFFAIRS)
MAX_REASON = 500


def grant_stream(grant_id: int) -> str:
    return f"privilege:{grant_id}"


def suspension_stream(suspension_id: int) -> str:
    return f"privilege-suspension:{suspension_id}"


# --- catalog -----------------------------------------------------------------------------


async def catalog(
    session: AsyncSession, *, grade: int | None = None, include_inactive: bool = False
) -> list[Procedure]:
    if grade is not None and grade not in (1, 2, 3, 4):
        raise invalid("grade", "手术级别应为1-4 / grade must be 1-4")
    stmt = sa.select(Procedure).order_by(Procedure.grade, Procedure.code)
    if grade is not None:
        stmt = stmt.where(Procedure.grade == grade)
    if not include_inactive:
        stmt = stmt.where(Procedure.active.is_(True))
    return list((await session.execute(stmt)).scalars())


async def procedure_by_code(session: AsyncSession, code: str | None) -> Procedure | None:
    """The active catalog entry for `code`, or None (callers decide how to report it)."""
    if not code:
        return None
    return (
        await session.execute(
            sa.select(Procedure).where(Procedure.code == code.strip(), Procedure.active.is_(True))
        )
    ).scalar_one_or_none()


async def upsert_procedure(
    session: AsyncSession,
    *,
    code: str,
    name: str,
    grade: int,
    level: str,
    name_en: str = "",
    active: bool = True,
    actor: Actor | None = None,
) -> Procedure:
    """Create or change a catalog entry in place (grants are by grade, so an entry has no
    versions); with an actor, a change is recorded in the entry's history."""
    if grade not in (1, 2, 3, 4):
        raise invalid("grade", "手术级别应为1-4 / grade must be 1-4")
    if level not in {lv.value for lv in ProcedureLevel}:
        raise invalid("level", "目录级别无效 / level must be national, provincial or hospital")
    proc = (
        await session.execute(sa.select(Procedure).where(Procedure.code == code))
    ).scalar_one_or_none()
    created = proc is None
    if proc is None:
        proc = Procedure(code=code, name=name, grade=grade)
        session.add(proc)
    values = {"name": name, "name_en": name_en, "grade": grade, "level": level, "active": active}
    changes = {k: [None if created else getattr(proc, k), v] for k, v in values.items()}
    changes = {k: v for k, v in changes.items() if created or v[0] != v[1]}
    for key, value in values.items():
        setattr(proc, key, value)
    await session.flush()
    if actor is not None and changes:
        await audit.append_event(
            session,
            f"procedure:{code}",
            "created" if created else "updated",
            actor=actor,
            data={"changes": changes},
        )
    return proc


# --- reading privileges --------------------------------------------------------------------


def _covers(grant: PrivilegeGrant, procedure: Procedure) -> bool:
    if grant.procedure_code is not None:
        return grant.procedure_code == procedure.code
    return grant.max_grade is not None and procedure.grade <= grant.max_grade


def _grant_holds_clause(at: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(
        PrivilegeGrant.granted_at.is_not(None),
        PrivilegeGrant.granted_at <= at,
        PrivilegeGrant.valid_from <= at,
        sa.or_(PrivilegeGrant.valid_until.is_(None), PrivilegeGrant.valid_until > at),
        sa.or_(PrivilegeGrant.revoked_at.is_(None), PrivilegeGrant.revoked_at > at),
    )


def _scope_clause(column: sa.ColumnElement[str], scope: str) -> sa.ColumnElement[bool]:
    return column.in_([scope, "all"])


def active_suspension_id(
    surgeon_id: sa.ColumnElement[int] | int,
    at: sa.ColumnElement[datetime] | datetime,
    *,
    scope: str = "surgery",
) -> sa.ScalarSelect[int]:
    """The id of the suspension in force at `at` (earliest first), as a subquery; the
    arguments may be columns of an outer query (the surgery guard reads it in one join)."""
    return (
        sa.select(PrivilegeSuspension.id)
        .where(
            PrivilegeSuspension.surgeon_id == surgeon_id,
            _scope_clause(PrivilegeSuspension.scope, scope),
            PrivilegeSuspension.starts_at <= at,
            sa.or_(PrivilegeSuspension.ends_at.is_(None), PrivilegeSuspension.ends_at > at),
            sa.or_(PrivilegeSuspension.lifted_at.is_(None), PrivilegeSuspension.lifted_at > at),
        )
        .order_by(PrivilegeSuspension.starts_at)
        .limit(1)
        .correlate_except(PrivilegeSuspension)  # its own table is never the outer one
        .scalar_subquery()
    )


def grant_holds_clause(
    surgeon_id: sa.ColumnElement[int] | int,
    at: sa.ColumnElement[datetime] | datetime,
    *,
    scope: str = "surgery",
) -> sa.ColumnElement[bool]:
    """A grant of the surgeon in force at `at`, ignoring suspensions (columns allowed)."""
    return sa.and_(
        PrivilegeGrant.surgeon_id == surgeon_id,
        PrivilegeGrant.scope == scope,
        _grant_holds_clause(at),
    )  # type: ignore[arg-type]


def covering_grant(grants: Iterable[PrivilegeGrant], procedure: Procedure) -> PrivilegeGrant | None:
    return next((g for g in grants if _covers(g, procedure)), None)


async def active_suspension(
    session: AsyncSession, surgeon_id: int, at: datetime, *, scope: str = "surgery"
) -> PrivilegeSuspension | None:
    stmt = sa.select(PrivilegeSuspension).where(
        PrivilegeSuspension.id == active_suspension_id(surgeon_id, at, scope=scope)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def grants_holding(
    session: AsyncSession, surgeon_id: int, at: datetime, *, scope: str = "surgery"
) -> list[PrivilegeGrant]:
    """Grants of the surgeon in force at `at`, ignoring suspensions."""
    stmt = (
        sa.select(PrivilegeGrant)
        .where(grant_holds_clause(surgeon_id, at, scope=scope))
        .order_by(PrivilegeGrant.id)
    )
    return list((await session.execute(stmt)).scalars())


@dataclass
class PrivilegeCheck:
    """The answer to "may this surgeon do this procedure at this moment"."""

    grant: PrivilegeGrant | None
    suspension: PrivilegeSuspension | None

    @property
    def holds(self) -> bool:
        return self.grant is not None and self.suspension is None

    @property
    def code(self) -> str | None:
        if self.suspension is not None:
            return "PRIVILEGE_SUSPENDED"
        if self.grant is None:
            return "NO_PRIVILEGE"
        return None

    def message(self, procedure: Procedure) -> str:
        if self.suspension is not None:
            return f"术者手术权限已暂停（{self.suspension.reason}）/ the surgeon's privileges are suspended"
        grade = GRADE_WORDS.get(procedure.grade, f"{procedure.grade}级手术")
        return (
            f"本手术为{grade}，术者未获{grade}授权或授权不在有效期。"
            f"请由有{grade}授权的医师主刀，或先向医务处申请{grade}授权；急诊可申请紧急例外"
            f" / This is a grade-{procedure.grade} procedure and the surgeon holds no valid"
            f" grade-{procedure.grade} privilege. Have a surgeon with that privilege operate, or"
            f" apply to medical affairs for it first; an emergency may ask for an override"
        )


GRADE_WORDS = {1: "一级手术", 2: "二级手术", 3: "三级手术", 4: "四级手术"}


async def check_privilege(
    session: AsyncSession,
    surgeon_id: int,
    procedure: Procedure,
    at: datetime,
    *,
    scope: str = "surgery",
) -> PrivilegeCheck:
    grant = covering_grant(await grants_holding(session, surgeon_id, at, scope=scope), procedure)
    suspension = await active_suspension(session, surgeon_id, at, scope=scope)
    return PrivilegeCheck(grant, suspension)


async def privilege_held(
    session: AsyncSession, surgeon_id: int, procedure: Procedure | str, at: datetime
) -> PrivilegeGrant | None:
    """The grant under which the surgeon could do `procedure` at `at`; None if none held."""
    if isinstance(procedure, str):
        found = (
            await session.execute(sa.select(Procedure).where(Procedure.code == procedure))
        ).scalar_one_or_none()
        if found is None:
            raise invalid("procedureCode", f"手术目录中无此手术 / unknown procedure: {procedure}")
        procedure = found
    result = await check_privilege(session, surgeon_id, procedure, at)
    return result.grant if result.holds else None


async def grants_of(session: AsyncSession, surgeon_id: int) -> list[PrivilegeGrant]:
    stmt = (
        sa.select(PrivilegeGrant)
        .where(PrivilegeGrant.surgeon_id == surgeon_id)
        .order_by(PrivilegeGrant.id)
    )
    return list((await session.execute(stmt)).scalars())


async def suspensions_of(session: AsyncSession, surgeon_id: int) -> list[PrivilegeSuspension]:
    stmt = (
        sa.select(PrivilegeSuspension)
        .where(PrivilegeSuspension.surgeon_id == surgeon_id)
        .order_by(PrivilegeSuspension.id)
    )
    return list((await session.execute(stmt)).scalars())


async def privilege_history(session: AsyncSession, surgeon_id: int) -> list[AuditEvent]:
    """Every hash-chained event of the surgeon's grants and suspensions, oldest first."""
    streams = [grant_stream(g.id) for g in await grants_of(session, surgeon_id) if g.id] + [
        suspension_stream(s.id) for s in await suspensions_of(session, surgeon_id) if s.id
    ]
    if not streams:
        return []
    stmt = (
        sa.select(AuditEvent)
        .where(AuditEvent.stream.in_(streams))
        .order_by(AuditEvent.at, AuditEvent.id)
    )
    return list((await session.execute(stmt)).scalars())


async def max_grade_held(session: AsyncSession, surgeon_id: int, at: datetime) -> int | None:
    if await active_suspension(session, surgeon_id, at) is not None:
        return None
    grades = [
        g.max_grade
        for g in await grants_holding(session, surgeon_id, at)
        if g.max_grade is not None
    ]
    return max(grades) if grades else None


# --- who may do what -----------------------------------------------------------------------


def can_manage(actor: Actor) -> bool:
    return actor.has_role(*MANAGERS)


def can_request_for(actor: Actor, surgeon: User) -> bool:
    if can_manage(actor):
        return True
    return (
        actor.has_role(Role.DEPT_HEAD)
        and actor.department_id is not None
        and surgeon.department_id == actor.department_id
    )


def can_view(actor: Actor, surgeon: User) -> bool:
    return (
        actor.user_id == surgeon.id
        or can_request_for(actor, surgeon)
        or actor.has_role(Role.VICE_PRESIDENT, Role.COMMITTEE)
    )


async def access_surgeon(
    session: AsyncSession, actor: Actor, username: str, *, field: str = "surgeonUsername"
) -> User:
    """The surgeon named by `username`, if the actor may see their privileges."""
    surgeon = (
        await session.execute(sa.select(User).where(User.username == username))
    ).scalar_one_or_none()
    if surgeon is None:
        raise DomainError(
            ErrorCode.NOT_FOUND, f"医师不存在 / no such user: {username[:80]}", field=field
        )
    if not can_view(actor, surgeon):
        raise forbidden("无权查看该医师的授权 / not allowed to see this surgeon's privileges")
    return surgeon


def _require_manager(actor: Actor) -> None:
    # The system actor (user id 0: seeds, penalty rules) acts for medical affairs.
    if actor.user_id and not can_manage(actor):
        raise forbidden("仅医务处可管理医师权限 / only medical affairs manage privileges")


def _clean_reason(reason: str | None, *, required: bool = True) -> str:
    text = (reason or "").strip()
    if required and not text:
        raise invalid("reason", "请填写原因 / a reason is required")
    if len(text) > MAX_REASON:
        raise invalid("reason", f"原因过长（最多{MAX_REASON}字）/ reason too long")
    return text


def _grant_data(grant: PrivilegeGrant) -> dict[str, object]:
    return {
        "surgeon_id": grant.surgeon_id,
        "scope": grant.scope,
        "max_grade": grant.max_grade,
        "procedure_code": grant.procedure_code,
        "valid_from": grant.valid_from.isoformat(),
        "valid_until": grant.valid_until.isoformat() if grant.valid_until else None,
        "status": grant.status,
    }


# --- grants --------------------------------------------------------------------------------


async def new_grant_request(
    session: AsyncSession,
    surgeon: User,
    *,
    max_grade: int | None,
    procedure_code: str | None,
    valid_from: datetime,
    valid_until: datetime | None,
    reason: str,
    actor: Actor,
    replaces_id: int | None = None,
    now: datetime | None = None,
) -> PrivilegeGrant:
    """A pending grant: it holds nothing until its approval completes (`activate_grant`)."""
    now = now or utcnow()
    if actor.user_id and not can_request_for(actor, surgeon):
        raise forbidden(
            "只能为本科室医师申请授权 / you may request privileges only for your department"
        )
    if (max_grade is None) == (procedure_code is None):
        raise invalid(
            "grade", "请指定手术级别或手术编码之一 / give either a grade or a procedure code"
        )
    if max_grade is not None and max_grade not in (1, 2, 3, 4):
        raise invalid("grade", "手术级别应为1-4 / grade must be 1-4")
    if procedure_code is not None and await procedure_by_code(session, procedure_code) is None:
        raise invalid("procedureCode", f"手术目录中无此手术 / unknown procedure: {procedure_code}")
    if valid_until is not None and valid_until <= valid_from:
        raise invalid("validUntil", "有效期止应晚于起始日期 / validUntil must be after validFrom")
    if replaces_id is not None:
        old = await session.get(PrivilegeGrant, replaces_id)
        if old is None or old.surgeon_id != surgeon.id:
            raise invalid("replacesId", "被替换的授权不存在 / the grant to replace does not exist")
    assert surgeon.id is not None
    grant = PrivilegeGrant(
        surgeon_id=surgeon.id,
        max_grade=max_grade,
        procedure_code=procedure_code.strip() if procedure_code else None,
        valid_from=valid_from,
        valid_until=valid_until,
        reason=_clean_reason(reason),
        status=GrantStatus.PENDING.value,
        requested_by=actor.user_id or None,
        requested_at=now,
        replaces_id=replaces_id,
    )
    session.add(grant)
    await session.flush()
    assert grant.id is not None
    await audit.append_event(
        session,
        grant_stream(grant.id),
        "requested",
        actor=actor,
        data=_grant_data(grant) | {"reason": grant.reason},
        at=now,
    )
    return grant


async def activate_grant(
    session: AsyncSession,
    grant: PrivilegeGrant,
    *,
    actor: Actor,
    now: datetime | None = None,
    via: str = "approval",
) -> PrivilegeGrant:
    """The approval completed (or a seed/migration grants directly): the grant holds from now."""
    now = now or utcnow()
    if grant.status != GrantStatus.PENDING.value:
        raise DomainError(ErrorCode.CONFLICT, "该授权已处理 / this grant was already decided")
    grant.status = GrantStatus.ACTIVE.value
    grant.granted_at = now
    await session.flush()
    assert grant.id is not None
    await audit.append_event(
        session,
        grant_stream(grant.id),
        "granted",
        actor=actor,
        data=_grant_data(grant) | {"via": via},
        at=now,
    )
    return grant


async def close_grant_request(
    session: AsyncSession,
    grant: PrivilegeGrant,
    *,
    actor: Actor,
    outcome: str,
    now: datetime | None = None,
) -> PrivilegeGrant:
    """The grant's approval ended without granting (rejected or withdrawn)."""
    now = now or utcnow()
    if grant.status != GrantStatus.PENDING.value:
        return grant
    grant.status = GrantStatus.REJECTED.value
    await session.flush()
    assert grant.id is not None
    await audit.append_event(
        session,
        grant_stream(grant.id),
        "not_granted",
        actor=actor,
        data={"outcome": outcome},
        at=now,
    )
    return grant


async def grant_directly(
    session: AsyncSession,
    surgeon: User,
    *,
    max_grade: int | None = None,
    procedure_code: str | None = None,
    valid_from: datetime,
    valid_until: datetime | None = None,
    reason: str,
    actor: Actor,
    now: datetime | None = None,
) -> PrivilegeGrant:
    """Record a grant decided outside Bedside (paper records being migrated, the demo)."""
    _require_manager(actor)
    grant = await new_grant_request(
        session,
        surgeon,
        max_grade=max_grade,
        procedure_code=procedure_code,
        valid_from=valid_from,
        valid_until=valid_until,
        reason=reason,
        actor=actor,
        now=now,
    )
    return await activate_grant(session, grant, actor=actor, now=now, via="recorded")


async def active_grant_id(
    session: AsyncSession, surgeon_id: int, *, max_grade: int | None, procedure_code: str | None
) -> int:
    """The one active grant of the surgeon for exactly this grade or procedure code."""
    if (max_grade is None) == (procedure_code is None):
        raise invalid(
            "grade", "请指定手术级别或手术编码之一 / give either a grade or a procedure code"
        )
    stmt = sa.select(PrivilegeGrant.id).where(
        PrivilegeGrant.surgeon_id == surgeon_id, PrivilegeGrant.status == GrantStatus.ACTIVE.value
    )
    stmt = (
        stmt.where(PrivilegeGrant.max_grade == max_grade)
        if max_grade is not None
        else stmt.where(PrivilegeGrant.procedure_code == procedure_code)
    )
    ids = list((await session.execute(stmt)).scalars())
    if not ids:
        raise DomainError(
            ErrorCode.NOT_FOUND,
            "该医师没有此项生效中的授权 / no such active grant",
            field="grade" if max_grade is not None else "procedureCode",
        )
    if len(ids) > 1:
        raise DomainError(
            ErrorCode.CONFLICT,
            "有多项相同授权，请指定授权编号 / several such grants: give the grant id",
            field="grantId",
        )
    return ids[0]


async def revoke_grant(
    session: AsyncSession, grant_id: int, *, actor: Actor, reason: str, now: datetime | None = None
) -> PrivilegeGrant:
    """Revoke (取消授权): the grant stops holding from now; the row keeps its terms."""
    _require_manager(actor)
    now = now or utcnow()
    grant = (
        await session.execute(
            sa.select(PrivilegeGrant).where(PrivilegeGrant.id == grant_id).with_for_update()
        )
    ).scalar_one_or_none()
    if grant is None:
        raise not_found("授权", "privilege grant")
    if grant.status != GrantStatus.ACTIVE.value:
        raise DomainError(
            ErrorCode.CONFLICT,
            "只能撤销生效中的授权 / only an active grant can be revoked",
            field="grantId",
        )
    grant.status = GrantStatus.REVOKED.value
    grant.revoked_at = now
    grant.revoked_by = actor.user_id or None
    grant.revoke_reason = _clean_reason(reason)
    await session.flush()
    await audit.append_event(
        session,
        grant_stream(grant_id),
        "revoked",
        actor=actor,
        data={"reason": grant.revoke_reason},
        at=now,
    )
    return grant


# --- suspensions ---------------------------------------------------------------------------


async def suspend_privileges(
    session: AsyncSession,
    surgeon_id: int,
    *,
    scope: str,
    reason: str,
    starts_at: datetime,
    ends_at: datetime | None,
    actor: Actor,
    source: str,
) -> PrivilegeSuspension:
    """Suspend a surgeon's privileges of `scope` ("surgery", "prescribing", …, "all") for a
    period (进修, 下乡, a penalty). Callers outside medical affairs (the penalty rules) pass
    the system actor and name themselves in `source` (e.g. "penalty:42")."""
    if actor.user_id and not can_manage(actor):
        raise forbidden("仅医务处可暂停医师权限 / only medical affairs suspend privileges")
    if scope not in SCOPES:
        raise invalid("scope", f"权限类别无效 / scope must be one of {', '.join(SCOPES)}")
    if ends_at is not None and ends_at <= starts_at:
        raise invalid("endsAt", "结束时间应晚于开始时间 / endsAt must be after startsAt")
    if not source or len(source) > 60:
        raise invalid("source", "来源无效 / invalid source")
    surgeon = await session.get(User, surgeon_id)
    if surgeon is None:
        raise not_found("医师", "surgeon")
    suspension = PrivilegeSuspension(
        surgeon_id=surgeon_id,
        scope=scope,
        reason=_clean_reason(reason),
        source=source,
        starts_at=starts_at,
        ends_at=ends_at,
        created_by=actor.user_id or None,
    )
    session.add(suspension)
    await session.flush()
    assert suspension.id is not None
    await audit.append_event(
        session,
        suspension_stream(suspension.id),
        "suspended",
        actor=actor,
        data={
            "surgeon_id": surgeon_id,
            "scope": scope,
            "reason": suspension.reason,
            "source": source,
            "starts_at": starts_at.isoformat(),
            "ends_at": ends_at.isoformat() if ends_at else None,
        },
    )
    return suspension


async def lift_suspension(
    session: AsyncSession,
    suspension_id: int,
    *,
    actor: Actor,
    reason: str = "",
    now: datetime | None = None,
) -> PrivilegeSuspension:
    """End a suspension early (back from 进修); the period before stays suspended."""
    if actor.user_id and not can_manage(actor):
        raise forbidden("仅医务处可恢复医师权限 / only medical affairs lift suspensions")
    now = now or utcnow()
    suspension = (
        await session.execute(
            sa.select(PrivilegeSuspension)
            .where(PrivilegeSuspension.id == suspension_id)
            .with_for_update()
        )
    ).scalar_one_or_none()
    if suspension is None:
        raise not_found("暂停记录", "suspension")
    if suspension.lifted_at is not None or (
        suspension.ends_at is not None and suspension.ends_at <= now
    ):
        raise DomainError(
            ErrorCode.CONFLICT,
            "该暂停已结束 / this suspension has already ended",
            field="suspensionId",
        )
    suspension.lifted_at = now
    suspension.lifted_by = actor.user_id or None
    suspension.lift_reason = _clean_reason(reason, required=False)
    await session.flush()
    await audit.append_event(
        session,
        suspension_stream(suspension_id),
        "lifted",
        actor=actor,
        data={"reason": suspension.lift_reason},
        at=now,
    )
    return suspension


# --- the hash chains every grant and suspension must have -----------------------------------


async def _expected_streams(session: AsyncSession) -> Iterable[str]:
    grants = (await session.execute(sa.select(PrivilegeGrant.id))).scalars()
    suspensions = (await session.execute(sa.select(PrivilegeSuspension.id))).scalars()
    return [grant_stream(i) for i in grants] + [suspension_stream(i) for i in suspensions]


if _expected_streams not in audit.expected_stream_sources:
    audit.expected_stream_sources.append(_expected_streams)


# --- the grant's approval (privilege_grant: department → party branch → medical affairs →
# authorization committee); the hooks below activate or close the pending grant --------------

GRANT_DEFINITION = "privilege_grant"
GRANT_SUBJECT = "privilege_grant"


async def request_grant(
    session: AsyncSession,
    surgeon: User,
    *,
    max_grade: int | None,
    procedure_code: str | None,
    valid_from: datetime,
    valid_until: datetime | None,
    reason: str,
    actor: Actor,
    replaces_id: int | None = None,
    now: datetime | None = None,
) -> tuple[PrivilegeGrant, ApprovalInstance]:
    """Ask for a grant: a pending grant plus its approval instance, the surgeon as applicant
    (so "the applicant's department head" is theirs, whoever files the request)."""
    now = now or utcnow()
    grant = await new_grant_request(
        session,
        surgeon,
        max_grade=max_grade,
        procedure_code=procedure_code,
        valid_from=valid_from,
        valid_until=valid_until,
        reason=reason,
        actor=actor,
        replaces_id=replaces_id,
        now=now,
    )
    instance = await approvals.start_instance(
        session,
        definition_key=GRANT_DEFINITION,
        applicant=surgeon,
        data={
            "grant_id": grant.id,
            "surgeon": surgeon.username,
            "max_grade": max_grade,
            "procedure_code": grant.procedure_code,
            "valid_from": valid_from.isoformat(),
            "valid_until": valid_until.isoformat() if valid_until else None,
            "reason": grant.reason,
        },
        subject_type=GRANT_SUBJECT,
        subject_id=grant.id,
        actor=actor,
        now=now,
    )
    grant.approval_instance_id = instance.id
    await session.flush()
    return grant, instance


async def _grant_of(session: AsyncSession, instance: ApprovalInstance) -> PrivilegeGrant | None:
    if instance.subject_type != GRANT_SUBJECT or instance.subject_id is None:
        return None
    return (
        await session.execute(
            sa.select(PrivilegeGrant)
            .where(PrivilegeGrant.id == instance.subject_id)
            .with_for_update()
        )
    ).scalar_one_or_none()


async def _on_grant_approved(
    session: AsyncSession, instance: ApprovalInstance, actor: Actor, now: datetime
) -> None:
    grant = await _grant_of(session, instance)
    if grant is not None and grant.status == GrantStatus.PENDING.value:
        await activate_grant(session, grant, actor=actor, now=now)


async def _on_grant_closed(
    session: AsyncSession, instance: ApprovalInstance, actor: Actor, now: datetime
) -> None:
    grant = await _grant_of(session, instance)
    if grant is not None:
        await close_grant_request(session, grant, actor=actor, outcome=instance.status, now=now)


def register_hooks() -> None:
    """Give the approval engine the grant process's hooks (from the assembly,
    `api.assembly.install_domain`; running it again changes nothing)."""
    approvals.register_completion_hook(GRANT_DEFINITION, _on_grant_approved)
    approvals.register_closing_hook(GRANT_DEFINITION, _on_grant_closed)
