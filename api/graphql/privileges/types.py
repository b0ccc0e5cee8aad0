from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry.scalars import JSON

from api.graphql.people.types import UserRef
from api.graphql.rows import from_row
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
    level: str = strawberry.field(
        description="national | provincial | hospital (国家级 / 省级 / 院级)"
    )
    active: bool

    @classmethod
    def from_row(cls, row: ProcedureRow) -> Procedure:
        return from_row(cls, row)


@strawberry.type(
    description="A privilege grant; its terms never change (revoked and granted anew)."
)
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
        return from_row(cls, row)


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
        return from_row(cls, row)


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
        return cls(
            stream=row.stream,
            seq=row.seq,
            action=row.action,
            actor=actor,
            at=row.at,
            data=row.data,
            hash=row.hash,
        )


@strawberry.type(description="A surgeon's privileges with their whole history.")
class SurgeonPrivileges:
    surgeon: UserRef
    grants: list[PrivilegeGrant]
    suspensions: list[PrivilegeSuspension]
    history: list[PrivilegeEvent]
    max_grade_now: int | None = strawberry.field(
        description="The highest grade held right now (suspensions applied)."
    )
