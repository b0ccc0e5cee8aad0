from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from api.graphql.people.types import UserRef
from api.models.audit import AuditEvent
from api.models.privileges import PrivilegeGrant as GrantRow
from api.models.privileges import PrivilegeSuspension as SuspensionRow
from api.models.privileges import Procedure as ProcedureRow


@strawberry.type(description="A procedure of the surgery catalog (手术目录).")
class Procedure:
    code: str
    name: str
    name_en: str
    grade: int
    level: str = strawberry.field(description="national | provincial | hospital (国家级 / 省级 / 院级)")
    active: bool

    @classmethod
    def from_row(cls, row: ProcedureRow) -> Procedure:
        return cls(code=row.code, name=row.name, name_en=row.name_en, grade=row.grade, level=row.level, active=row.active)


@strawberry.type(description="A privilege grant; its terms never change (revoked and granted anew).")
class PrivilegeGrant:
    id: strawberry.ID
    scope: str
    max_grade: int | None
    procedure_code: str | None
    valid_from: datetime
    valid_until: datetime | None
    status: str = strawberry.field(description="pending | active | rejected | revoked")
    reason: str
    requested_at: datetime
    granted_at: datetime | None
    revoked_at: datetime | None
    revoke_reason: str | None
    replaces_id: strawberry.ID | None
    approval_instance_id: strawberry.ID | None

    @classmethod
    def from_row(cls, row: GrantRow) -> PrivilegeGrant:
        return cls(
            id=strawberry.ID(str(row.id)),
            scope=row.scope,
            max_grade=row.max_grade,
            procedure_code=row.procedure_code,
            valid_from=row.valid_from,
            valid_until=row.valid_until,
            status=row.status,
            reason=row.reason,
            requested_at=row.requested_at,
            granted_at=row.granted_at,
            revoked_at=row.revoked_at,
            revoke_reason=row.revoke_reason,
            replaces_id=strawberry.ID(str(row.replaces_id)) if row.replaces_id else None,
            approval_instance_id=strawberry.ID(str(row.approval_instance_id)) if row.approval_instance_id else None,
        )


@strawberry.type(description="A suspension of privileges (进修, 下乡, penalty).")
class PrivilegeSuspension:
    id: strawberry.ID
    scope: str
    reason: str
    source: str
    starts_at: datetime
    ends_at: datetime | None
    lifted_at: datetime | None
    lift_reason: str | None

    @classmethod
    def from_row(cls, row: SuspensionRow) -> PrivilegeSuspension:
        return cls(
            id=strawberry.ID(str(row.id)),
            scope=row.scope,
            reason=row.reason,
            source=row.source,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            lifted_at=row.lifted_at,
            lift_reason=row.lift_reason,
        )


@strawberry.type(description="One hash-chained event of a grant or suspension.")
class PrivilegeEvent:
    stream: str
    seq: int
    action: str
    actor: UserRef | None
    at: datetime
    data: JSON
    hash: str

    @classmethod
    def from_row(cls, row: AuditEvent, actor: UserRef | None) -> PrivilegeEvent:
        return cls(stream=row.stream, seq=row.seq, action=row.action, actor=actor, at=row.at, data=row.data, hash=row.hash)


@strawberry.type(description="A surgeon's privileges with their whole history.")
class SurgeonPrivileges:
    surgeon: UserRef
    grants: list[PrivilegeGrant]
    suspensions: list[PrivilegeSuspension]
    history: list[PrivilegeEvent]
    max_grade_now: int | None = strawberry.field(description="The highest grade held right now (suspensions applied).")
