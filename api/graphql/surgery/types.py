from __future__ import annotations

from datetime import datetime

import strawberry

from api.domain import privileges
from api.domain.surgery.metrics import ApprovalMetrics as MetricsRow
from api.graphql.context import Info
from api.graphql.people.loaders import load_user
from api.graphql.people.types import UserRef
from api.graphql.privileges.types import Procedure
from api.graphql.rows import from_row
from api.models.surgery import SurgeryApplication as ApplicationRow


@strawberry.input(
    description="手术申请. A missing material is a pre-check finding, not a schema error."
)
class SurgeryApplicationInput:
    patient_id: strawberry.ID
    procedure_code: str
    planned_at: datetime = strawberry.field(
        description="Without a zone: hospital local time (Asia/Shanghai)."
    )
    emergency: bool
    diagnosis: str
    anesthesia: str
    consent_signed: bool
    preop_assessment: str | None = None
    surgeon_username: str | None = strawberry.field(
        default=None, description="Defaults to the caller."
    )
    emergency_override: bool = strawberry.field(
        default=False,
        description="Emergency only: go ahead without the privilege; the superior confirms afterwards.",
    )
    override_reason: str | None = None
    attachments: list[str] = strawberry.field(
        default_factory=list,
        description="sha256 of each pre-operative document uploaded through POST /attachments.",
    )


@strawberry.type(description="The clinical part of a surgery approval.")
class SurgeryApplication:
    id: strawberry.ID
    instance_id: strawberry.ID | None
    patient_id: strawberry.ID
    procedure_code: str
    grade: int
    planned_at: datetime
    emergency: bool
    diagnosis: str
    anesthesia: str
    preop_assessment: str | None
    consent_signed: bool
    emergency_override: bool
    override_reason: str | None
    override_instance_id: strawberry.ID | None
    override_confirmed_at: datetime | None
    notice_sha256: str | None
    notice_generated_at: datetime | None
    attachments: list[str]
    row: strawberry.Private[ApplicationRow]

    @classmethod
    def from_row(cls, row: ApplicationRow) -> SurgeryApplication:
        return from_row(cls, row)

    @strawberry.field(description="The procedure as the catalog names it.")
    async def procedure(self, info: Info) -> Procedure | None:
        async with info.context.read() as session:
            found = await privileges.procedure_by_code(session, self.row.procedure_code)
        return Procedure.from_row(found) if found else None

    @strawberry.field(description="The operating surgeon.")
    async def surgeon(self, info: Info) -> UserRef | None:
        user = await load_user(info.context, self.row.surgeon_id)
        return UserRef.from_row(user) if user else None


@strawberry.type(description="手术审批通知书: the PDF, base64-encoded, with its recorded sha256.")
class SurgeryNotice:
    filename: str
    content_type: str
    sha256: str
    size_bytes: int
    content_base64: str


@strawberry.type(description="Surgery approval figures over applications submitted in a period.")
class ApprovalMetrics:
    submitted: int
    decided: int
    completed_within_24h: int
    completed_within_24h_rate: float | None
    emergency_submitted: int
    emergency_within_2h: int
    emergency_within_2h_rate: float | None
    median_hours_to_decision: float | None
    overdue_count: int

    @classmethod
    def from_row(cls, row: MetricsRow) -> ApprovalMetrics:
        return from_row(cls, row)


@strawberry.type(
    description="越权: an approval beyond the approver's authority, as recorded in an instance's history."
)
class OverAuthorityRecord:
    instance_id: strawberry.ID
    at: datetime
    code: str
    message: str
    approver_username: str | None
    grade: int | None
    hash: str
