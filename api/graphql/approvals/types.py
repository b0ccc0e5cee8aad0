"""GraphQL types of the approval engine.

`ApprovalInstance` and `ApprovalTask` are built from rows with `from_row` and are meant
to be returned by other areas too (surgery returns an instance from its submit
mutation). Nested fields load lazily through per-request DataLoaders.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import sqlalchemy as sa
import strawberry
from strawberry.scalars import JSON

from api.domain import approvals
from api.graphql.approvals.forms import FormEntry, ProcessForm, form_entries
from api.graphql.approvals.loaders import (
    data_read_logger,
    definition_loader,
    instance_loader,
    tasks_by_instance_loader,
)
from api.graphql.context import Info
from api.graphql.patients.types import PatientSummary
from api.graphql.people.loaders import load_user
from api.graphql.people.types import UserRef
from api.graphql.rows import from_row
from api.graphql.texts import LocalizedText
from api.models.approvals import ApprovalInstance as InstanceRow
from api.models.approvals import ApprovalTask as TaskRow
from api.models.audit import AuditEvent
from api.models.base import utcnow
from api.models.patients import Patient as PatientRow
from api.models.people import User as UserRow

# The keys of an event's data that name the person it concerns (who got the task, to whom
# it was transferred, who was added or copied), in the order they are looked for.
PERSON_KEYS = ("assignee", "to", "signer", "user")


@strawberry.enum(description="审批决定 / a decision on a task")
class Decision(Enum):
    APPROVE = "approve"
    REJECT = "reject"
    RETURN = "return"


@strawberry.type(description="A finding of a rule check (pre-check or policy guard).")
class Finding:
    code: str
    message: str
    field: str | None = None

    @strawberry.field(description="The message in each language.")
    def messages(self) -> LocalizedText:
        return LocalizedText.of(self.message)


@strawberry.type(description="智能预审 result stored with the instance.")
class Precheck:
    passed: bool
    findings: list[Finding]

    @classmethod
    def from_json(cls, value: dict[str, Any] | None) -> Precheck | None:
        if not isinstance(value, dict):
            return None
        findings = [
            Finding(
                code=str(f.get("code", "")), message=str(f.get("message", "")), field=f.get("field")
            )
            for f in value.get("findings") or []
            if isinstance(f, dict)
        ]
        return cls(passed=bool(value.get("passed", not findings)), findings=findings)


@strawberry.type(description="A step of a process definition.")
class ApprovalStep:
    id: str
    name: str
    name_en: str
    mode: str


async def _step(info: Info, definition_id: int, step_id: str) -> ApprovalStep:
    definition = await info.context.loader("approval_definition", definition_loader).load(
        definition_id
    )
    if definition is None or step_id not in definition.placed:
        return ApprovalStep(id=step_id, name=step_id, name_en=step_id, mode="all")
    step = definition.step(step_id)
    return ApprovalStep(id=step.id, name=step.name.zh, name_en=step.name.en, mode=step.mode)


@strawberry.type(description="One person's task on an approval.")
class ApprovalTask:
    id: strawberry.ID
    status: str
    kind: str
    due_at: datetime | None
    overdue: bool
    decided_at: datetime | None
    comment: str | None
    created_at: datetime
    row: strawberry.Private[TaskRow]

    @classmethod
    def from_row(cls, row: TaskRow) -> ApprovalTask:
        return from_row(cls, row)

    @strawberry.field
    async def assignee(self, info: Info) -> UserRef | None:
        user = await load_user(info.context, self.row.assignee_id)
        return UserRef.from_row(user) if user else None

    @strawberry.field(description="Whether I may decide (approve, return, reject, hand on) it now.")
    def viewer_can_decide(self, info: Info) -> bool:
        return approvals.may_decide(self.row, info.context.require_actor())

    @strawberry.field
    async def instance(self, info: Info) -> ApprovalInstance | None:
        row = await info.context.loader("approval_instance", instance_loader).load(
            self.row.instance_id
        )
        return ApprovalInstance.from_row(row) if row else None

    @strawberry.field
    async def step(self, info: Info) -> ApprovalStep:
        instance = await info.context.loader("approval_instance", instance_loader).load(
            self.row.instance_id
        )
        return await _step(info, instance.definition_id if instance else 0, self.row.step_id)

    @strawberry.field(
        description="退回: the earlier steps a return from this task may go to (the applicant always may)."
    )
    async def return_targets(self, info: Info) -> list[ApprovalStep]:
        if self.row.status != "pending":
            return []
        instance = await info.context.loader("approval_instance", instance_loader).load(
            self.row.instance_id
        )
        if instance is None:
            return []
        definition = await info.context.loader("approval_definition", definition_loader).load(
            instance.definition_id
        )
        if definition is None:
            return []
        return [
            await _step(info, instance.definition_id, step_id)
            for step_id in approvals.return_targets(definition, instance, self.row)
        ]


@strawberry.type(description="One event of an instance's hash-chained history.")
class ApprovalHistoryEvent:
    seq: int
    action: str
    at: datetime
    hash: str
    prev_hash: str
    data: JSON
    actor_id: strawberry.Private[int | None]
    definition_id: strawberry.Private[int]

    @classmethod
    def from_row(cls, row: AuditEvent, definition_id: int = 0) -> ApprovalHistoryEvent:
        return from_row(cls, row, definition_id=definition_id)

    @strawberry.field
    async def actor(self, info: Info) -> UserRef | None:
        user = await load_user(info.context, self.actor_id)
        return UserRef.from_row(user) if user else None

    @strawberry.field(description="The step the event concerns, if any.")
    async def step(self, info: Info) -> ApprovalStep | None:
        step_id = (self.data or {}).get("step") if isinstance(self.data, dict) else None
        if not isinstance(step_id, str):
            return None
        return await _step(info, self.definition_id, step_id)

    @strawberry.field(
        description="The person the event names: who received the task, to whom it went, who was added."
    )
    async def person(self, info: Info) -> UserRef | None:
        data = self.data if isinstance(self.data, dict) else {}
        username = next((data[k] for k in PERSON_KEYS if isinstance(data.get(k), str)), None)
        if username is None:
            return None
        async with info.context.read() as session:
            user = (
                await session.execute(sa.select(UserRow).where(UserRow.username == username))
            ).scalar_one_or_none()
        return UserRef.from_row(user) if user else None


@strawberry.type(description="An approval: a surgery application, a privilege grant …")
class ApprovalInstance:
    id: strawberry.ID
    kind: str
    definition_version: int
    status: str
    due_at: datetime | None
    overdue: bool
    blocked_reason: str | None
    created_at: datetime
    closed_at: datetime | None
    subject_type: str | None
    subject_id: strawberry.ID | None
    has_pdf: bool
    row: strawberry.Private[InstanceRow]

    @classmethod
    def from_row(cls, row: InstanceRow) -> ApprovalInstance:
        return from_row(cls, row, has_pdf=bool(row.pdf_path))

    @strawberry.field(
        description="The application's data; reading it is access-logged when it concerns a patient."
    )
    async def data(self, info: Info) -> JSON:
        await info.context.loader("approval_data_reads", data_read_logger).load(self.row.id)
        return self.row.data or {}

    @strawberry.field
    def precheck(self) -> Precheck | None:
        return Precheck.from_json(self.row.precheck)

    @strawberry.field(description="The process's name (of the version the instance runs on).")
    async def process_name(self, info: Info) -> LocalizedText:
        definition = await info.context.loader("approval_definition", definition_loader).load(
            self.row.definition_id
        )
        if definition is None:
            return LocalizedText(zh=self.row.kind, en=self.row.kind)
        name = definition.body.name
        return LocalizedText(zh=name.zh, en=name.en or name.zh)

    @strawberry.field(
        description="The form it was started with (its definition version's), if any."
    )
    async def form(self, info: Info) -> ProcessForm | None:
        definition = await info.context.loader("approval_definition", definition_loader).load(
            self.row.definition_id
        )
        return ProcessForm.of(definition.body.form) if definition else None

    @strawberry.field(
        description="The filled-in form, field by field with labels (access-logged like `data`)."
    )
    async def form_entries(self, info: Info) -> list[FormEntry]:
        definition = await info.context.loader("approval_definition", definition_loader).load(
            self.row.definition_id
        )
        if definition is None or definition.body.form is None:
            return []
        await info.context.loader("approval_data_reads", data_read_logger).load(self.row.id)
        async with info.context.read() as session:
            return await form_entries(
                session, definition.body.form, self.row.data or {}, info.context.settings.tz
            )

    @strawberry.field
    async def applicant(self, info: Info) -> UserRef | None:
        user = await load_user(info.context, self.row.applicant_id)
        return UserRef.from_row(user) if user else None

    @strawberry.field
    async def tasks(self, info: Info) -> list[ApprovalTask]:
        rows = await info.context.loader("approval_tasks", tasks_by_instance_loader).load(
            self.row.id
        )
        return [ApprovalTask.from_row(r) for r in rows]

    @strawberry.field(description="Steps with a pending task right now.")
    async def current_steps(self, info: Info) -> list[ApprovalStep]:
        rows = await info.context.loader("approval_tasks", tasks_by_instance_loader).load(
            self.row.id
        )
        step_ids = list(dict.fromkeys(r.step_id for r in rows if r.status == "pending"))
        return [await _step(info, self.row.definition_id, s) for s in step_ids]

    @strawberry.field(description="The hash-chained history, oldest first.")
    async def history(self, info: Info) -> list[ApprovalHistoryEvent]:
        async with info.context.read() as session:
            events = await approvals.instance_history(session, self.row.id or 0)
        return [ApprovalHistoryEvent.from_row(e, self.row.definition_id) for e in events]

    @strawberry.field(
        description="Whether the history's hash chain is intact (the check of `bedside audit verify`)."
    )
    async def history_verified(self, info: Info) -> bool:
        async with info.context.read() as session:
            return await approvals.history_verified(session, self.row.id or 0)

    @strawberry.field(description="Whether I may withdraw (撤销) it now.")
    def viewer_can_withdraw(self, info: Info) -> bool:
        return approvals.may_withdraw(self.row, info.context.require_actor())

    @strawberry.field(description="Whether I may amend and resubmit it now (after 退回).")
    def viewer_can_resubmit(self, info: Info) -> bool:
        return approvals.may_resubmit(self.row, info.context.require_actor())

    @strawberry.field(
        description="The patient the application concerns, if any (access-logged like `data`)."
    )
    async def patient(self, info: Info) -> PatientSummary | None:
        patient_id = (self.row.data or {}).get(approvals.PATIENT_KEY)
        if not isinstance(patient_id, int):
            return None
        await info.context.loader("approval_data_reads", data_read_logger).load(self.row.id)
        async with info.context.read() as session:
            row = await session.get(PatientRow, patient_id)
        return (
            PatientSummary.from_row(row, utcnow().astimezone(info.context.settings.tz))
            if row
            else None
        )


@strawberry.type
class ApprovalDefinitionInfo:
    id: strawberry.ID
    key: str
    version: int
    name: str
    published_at: datetime
