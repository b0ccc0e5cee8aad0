"""submitSurgeryApplication, surgeryApplication, surgeryNotice, approvalMetrics."""

from __future__ import annotations

import base64
from datetime import datetime
from zoneinfo import ZoneInfo

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import record_access
from api.domain import approvals, surgery
from api.domain.surgery.hooks import notice_file
from api.domain.surgery.metrics import approval_metrics, over_authority_records
from api.errors import DomainError, ErrorCode, invalid
from api.graphql.approvals.types import ApprovalInstance, Precheck
from api.graphql.context import Info
from api.graphql.permissions import HasRole, IsStaff
from api.graphql.scalars import parse_id
from api.graphql.surgery.types import (
    ApprovalMetrics,
    OverAuthorityRecord,
    SurgeryApplication,
    SurgeryApplicationInput,
    SurgeryNotice,
)
from api.models.base import utcnow
from api.models.people import Role
from api.storage import storage_of

MetricsViewers = HasRole(Role.MEDICAL_AFFAIRS, Role.VICE_PRESIDENT)
MAX_KEY = 120


def aware(value: datetime, tz: ZoneInfo) -> datetime:
    """A time without a zone is the hospital's local time."""
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[IsStaff],
        description="The clinical part of a surgery approval (access-logged).",
    )
    async def surgery_application(
        self, info: Info, instance_id: strawberry.ID
    ) -> SurgeryApplication:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            _, row = await surgery.access_application(
                session, actor, parse_id(instance_id, "instanceId")
            )
            await record_access(
                session,
                actor,
                "surgery_application",
                detail={"instance_id": row.instance_id, "patient_id": row.patient_id},
            )
        return SurgeryApplication.from_row(row)

    @strawberry.field(
        permission_classes=[HasRole(Role.SURGEON, Role.DEPT_HEAD)],
        description="智能预审 before submitting: the findings the submission would give; nothing is written.",
    )
    async def precheck_surgery_application(
        self, info: Info, input: SurgeryApplicationInput
    ) -> Precheck:
        actor = info.context.require_actor()
        async with info.context.read() as session:
            request = await _request(info, session, input)
            result = await surgery.precheck_surgery_application(session, request, actor=actor)
        return Precheck.from_json(result.as_dict()) or Precheck(passed=True, findings=[])

    @strawberry.field(
        permission_classes=[IsStaff],
        description="Download the 手术审批通知书 PDF (access-logged as an export).",
    )
    async def surgery_notice(self, info: Info, instance_id: strawberry.ID) -> SurgeryNotice:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            instance, row = await surgery.access_application(
                session, actor, parse_id(instance_id, "instanceId")
            )
            content = notice_file(info.context.settings, row)
            if content is None:
                raise DomainError(
                    ErrorCode.NOT_FOUND,
                    "审批通知书尚未生成或已损坏 / no approval notice (not generated, or altered)",
                    field="instanceId",
                )
            await record_access(
                session,
                actor,
                "surgery_notice",
                action="export",
                detail={
                    "instance_id": instance.id,
                    "patient_id": row.patient_id,
                    "sha256": row.notice_sha256,
                },
            )
        assert row.notice_sha256 is not None
        return SurgeryNotice(
            filename=f"surgery-approval-{instance.id}.pdf",
            content_type="application/pdf",
            sha256=row.notice_sha256,
            size_bytes=len(content),
            content_base64=base64.b64encode(content).decode(),
        )

    @strawberry.field(
        permission_classes=[IsStaff],
        description="One pre-operative document of an application (access-logged as an export).",
    )
    async def surgery_document(
        self, info: Info, instance_id: strawberry.ID, sha256: str
    ) -> SurgeryNotice:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            instance, row = await surgery.access_application(
                session, actor, parse_id(instance_id, "instanceId")
            )
            document = await surgery.application_document(session, row, sha256)
            content = await storage_of(info.context.services).get(document.key)
            await record_access(
                session,
                actor,
                "surgery_document",
                action="export",
                detail={
                    "instance_id": instance.id,
                    "patient_id": row.patient_id,
                    "sha256": document.sha256,
                },
            )
        return SurgeryNotice(
            filename=f"preop-{instance.id}-{document.sha256[:12]}",
            content_type=document.content_type,
            sha256=document.sha256,
            size_bytes=len(content),
            content_base64=base64.b64encode(content).decode(),
        )

    @strawberry.field(
        permission_classes=[MetricsViewers],
        description="越权行为: over-authority approvals recorded in the period.",
    )
    async def over_authority_records(
        self, info: Info, since: datetime, until: datetime
    ) -> list[OverAuthorityRecord]:
        actor = info.context.require_actor()
        tz = info.context.settings.tz
        async with info.context.read() as session:
            rows = await over_authority_records(
                session, actor, since=aware(since, tz), until=aware(until, tz)
            )
        return [
            OverAuthorityRecord(
                instance_id=strawberry.ID(r.stream.removeprefix("approval:")),
                at=r.at,
                code=str(r.data.get("code", "")),
                message=str(r.data.get("message", "")),
                approver_username=r.data.get("approver"),
                grade=r.data.get("grade"),
                hash=r.hash,
            )
            for r in rows
        ]

    @strawberry.field(
        permission_classes=[MetricsViewers],
        description="24-hour completion, emergency 2-hour rate, median hours, overdue.",
    )
    async def approval_metrics(
        self, info: Info, since: datetime, until: datetime
    ) -> ApprovalMetrics:
        actor = info.context.require_actor()
        tz = info.context.settings.tz
        async with info.context.read() as session:
            row = await approval_metrics(
                session, actor, since=aware(since, tz), until=aware(until, tz), now=utcnow()
            )
        return ApprovalMetrics.from_row(row)


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[HasRole(Role.SURGEON, Role.DEPT_HEAD)],
        description="Pre-check (智能预审), then route the surgery approval. PRECHECK_FAILED carries every finding.",
    )
    async def submit_surgery_application(
        self, info: Info, input: SurgeryApplicationInput, idempotency_key: str | None = None
    ) -> ApprovalInstance:
        actor = info.context.require_actor()
        if idempotency_key is not None and not 0 < len(idempotency_key) <= MAX_KEY:
            raise invalid(
                "idempotencyKey",
                f"幂等键长度须为 1-{MAX_KEY} / idempotency key must be 1-{MAX_KEY} characters",
            )
        async with info.context.transaction() as session:
            request = await _request(info, session, input)
            instance = await surgery.submit_surgery_application(
                session, request, actor=actor, idempotency_key=idempotency_key
            )
        return ApprovalInstance.from_row(instance)

    @strawberry.mutation(
        permission_classes=[HasRole(Role.SURGEON, Role.DEPT_HEAD)],
        description="After 退回: the amended application, pre-checked again, goes on from the step that returned it.",
    )
    async def resubmit_surgery_application(
        self,
        info: Info,
        instance_id: strawberry.ID,
        input: SurgeryApplicationInput,
        comment: str | None = None,
    ) -> ApprovalInstance:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            instance = await approvals.access_instance(
                session, actor, parse_id(instance_id, "instanceId")
            )
            request = await _request(info, session, input)
            instance = await surgery.resubmit_surgery_application(
                session, instance, request, actor=actor, comment=comment
            )
        return ApprovalInstance.from_row(instance)


async def _request(
    info: Info, session: AsyncSession, input: SurgeryApplicationInput
) -> surgery.SurgeryRequest:
    actor = info.context.require_actor()
    surgeon = await surgery.resolve_surgeon(session, actor, input.surgeon_username)
    return surgery.SurgeryRequest(
        patient_id=parse_id(input.patient_id, "patientId"),
        procedure_code=input.procedure_code,
        planned_at=aware(input.planned_at, info.context.settings.tz),
        emergency=input.emergency,
        diagnosis=input.diagnosis,
        anesthesia=input.anesthesia,
        preop_assessment=input.preop_assessment,
        consent_signed=input.consent_signed,
        surgeon=surgeon,
        emergency_override=input.emergency_override,
        override_reason=input.override_reason,
        attachments=list(dict.fromkeys(a.strip().lower() for a in input.attachments)),
    )
