"""surgeryCatalog, privileges, privilegeHeld; suspendPrivilege, liftSuspension, revokePrivilege.

grantPrivilege starts the `privilege_grant` approval.
"""

from __future__ import annotations

from datetime import datetime

import strawberry
import strawberry.tools

from api.auth import Actor
from api.domain import privileges
from api.errors import invalid
from api.graphql.approvals.types import ApprovalInstance
from api.graphql.context import Info
from api.graphql.people.loaders import load_user
from api.graphql.people.types import UserRef
from api.graphql.permissions import HasRole, IsStaff
from api.graphql.privileges.types import (
    PrivilegeEvent,
    PrivilegeGrant,
    PrivilegeSuspension,
    Procedure,
    SurgeonPrivileges,
)
from api.graphql.scalars import parse_id
from api.graphql.surgery.schema import aware
from api.models.base import utcnow
from api.models.people import Role

Managers = HasRole(Role.MEDICAL_AFFAIRS)


@strawberry.input(description="Suspend a surgeon's privileges for a period (进修, 下乡, penalty).")
class SuspendPrivilegeInput:
    surgeon_username: str
    reason: str
    starts_at: datetime
    ends_at: datetime | None = None
    scope: str = "surgery"


async def _surgeon_privileges(info: Info, actor: Actor, username: str) -> SurgeonPrivileges:
    async with info.context.read() as session:
        surgeon = await privileges.access_surgeon(session, actor, username)
        assert surgeon.id is not None
        grants = await privileges.grants_of(session, surgeon.id)
        suspensions = await privileges.suspensions_of(session, surgeon.id)
        events = await privileges.privilege_history(session, surgeon.id)
        grade_now = await privileges.max_grade_held(session, surgeon.id, utcnow())
    history = []
    for event in events:
        user = await load_user(info.context, event.actor_id)
        history.append(PrivilegeEvent.from_row(event, UserRef.from_row(user) if user else None))
    return SurgeonPrivileges(
        surgeon=UserRef.from_row(surgeon),
        grants=[PrivilegeGrant.from_row(g) for g in grants],
        suspensions=[PrivilegeSuspension.from_row(s) for s in suspensions],
        history=history,
        max_grade_now=grade_now,
    )


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[IsStaff],
        description="The surgery catalog (手术目录), optionally one grade.",
    )
    async def surgery_catalog(self, info: Info, grade: int | None = None) -> list[Procedure]:
        async with info.context.read() as session:
            rows = await privileges.catalog(session, grade=grade)
        return [Procedure.from_row(r) for r in rows]

    @strawberry.field(
        permission_classes=[IsStaff],
        description="A surgeon's grants, suspensions and their history.",
    )
    async def privileges(self, info: Info, surgeon_username: str) -> SurgeonPrivileges:
        actor = info.context.require_actor()
        return await _surgeon_privileges(info, actor, surgeon_username)

    @strawberry.field(
        permission_classes=[IsStaff],
        description="The grant under which the surgeon could do the procedure at `at` (null: none held).",
    )
    async def privilege_held(
        self, info: Info, surgeon_username: str, procedure_code: str, at: datetime
    ) -> PrivilegeGrant | None:
        actor = info.context.require_actor()
        async with info.context.read() as session:
            surgeon = await privileges.access_surgeon(session, actor, surgeon_username)
            assert surgeon.id is not None
            grant = await privileges.privilege_held(
                session, surgeon.id, procedure_code, aware(at, info.context.settings.tz)
            )
        return PrivilegeGrant.from_row(grant) if grant else None


@strawberry.type
class _SuspensionMutation:
    @strawberry.mutation(
        permission_classes=[Managers],
        description="Suspend privileges for a period; the suspension is hash-chained.",
    )
    async def suspend_privilege(
        self, info: Info, input: SuspendPrivilegeInput
    ) -> PrivilegeSuspension:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            surgeon = await privileges.access_surgeon(session, actor, input.surgeon_username)
            assert surgeon.id is not None
            row = await privileges.suspend_privileges(
                session,
                surgeon.id,
                scope=input.scope,
                reason=input.reason,
                starts_at=aware(input.starts_at, info.context.settings.tz),
                ends_at=aware(input.ends_at, info.context.settings.tz) if input.ends_at else None,
                actor=actor,
                source="manual",
            )
        return PrivilegeSuspension.from_row(row)

    @strawberry.mutation(permission_classes=[Managers], description="End a suspension early.")
    async def lift_suspension(
        self, info: Info, suspension_id: strawberry.ID, reason: str = ""
    ) -> PrivilegeSuspension:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            row = await privileges.lift_suspension(
                session, parse_id(suspension_id, "suspensionId"), actor=actor, reason=reason
            )
        return PrivilegeSuspension.from_row(row)

    @strawberry.mutation(
        permission_classes=[Managers],
        description="Revoke a grant (取消授权), by its id or by surgeon and grade or procedure code; grant anew to change terms.",
    )
    async def revoke_privilege(
        self,
        info: Info,
        reason: str,
        grant_id: strawberry.ID | None = None,
        surgeon_username: str | None = None,
        grade: int | None = None,
        procedure_code: str | None = None,
    ) -> PrivilegeGrant:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            if grant_id is not None:
                target = parse_id(grant_id, "grantId")
            else:
                if surgeon_username is None:
                    raise invalid(
                        "grantId",
                        "请指定授权或医师 / give a grant id, or a surgeon with a grade or procedure code",
                    )
                surgeon = await privileges.access_surgeon(session, actor, surgeon_username)
                assert surgeon.id is not None
                target = await privileges.active_grant_id(
                    session, surgeon.id, max_grade=grade, procedure_code=procedure_code
                )
            row = await privileges.revoke_grant(session, target, actor=actor, reason=reason)
        return PrivilegeGrant.from_row(row)


@strawberry.input(
    description="Request a privilege: up to a grade, or one procedure code; runs the privilege_grant approval."
)
class GrantPrivilegeInput:
    surgeon_username: str
    valid_from: datetime
    reason: str
    grade: int | None = None
    procedure_code: str | None = None
    valid_until: datetime | None = None
    replaces_grant_id: strawberry.ID | None = strawberry.field(
        default=None, description="The grant this one succeeds (revoke it separately)."
    )


@strawberry.type
class GrantMutation:
    @strawberry.mutation(
        permission_classes=[HasRole(Role.MEDICAL_AFFAIRS, Role.DEPT_HEAD)],
        description="Request a grant; it holds once department, party branch, medical affairs and the committee approve.",
    )
    async def grant_privilege(self, info: Info, input: GrantPrivilegeInput) -> ApprovalInstance:
        actor = info.context.require_actor()
        tz = info.context.settings.tz
        async with info.context.transaction() as session:
            surgeon = await privileges.access_surgeon(session, actor, input.surgeon_username)
            _, instance = await privileges.request_grant(
                session,
                surgeon,
                max_grade=input.grade,
                procedure_code=input.procedure_code,
                valid_from=aware(input.valid_from, tz),
                valid_until=aware(input.valid_until, tz) if input.valid_until else None,
                reason=input.reason,
                actor=actor,
                replaces_id=parse_id(input.replaces_grant_id, "replacesGrantId")
                if input.replaces_grant_id
                else None,
            )
        return ApprovalInstance.from_row(instance)


Mutation = strawberry.tools.merge_types("Mutation", (_SuspensionMutation, GrantMutation))
