"""Submitting a surgery application (手术申请): pre-check, then the `surgery` approval.

The operating surgeon is the instance's applicant, whoever files it (the surgeon, or
their department head), so "the applicant's department head" is the surgeon's head and
the surgeon can withdraw or resubmit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api import idempotency, texts
from api.auth import Actor
from api.domain import approvals
from api.domain.approvals import Finding, history
from api.domain.surgery.precheck import (
    DEFAULT_RULES,
    PrecheckContext,
    PrecheckResult,
    SurgeryRequest,
    run_precheck,
    unknown_rules,
)
from api.errors import DomainError, ErrorCode, forbidden, invalid, not_found
from api.models.approvals import ApprovalInstance
from api.models.base import utcnow
from api.models.people import Role, User
from api.models.privileges import Procedure
from api.models.surgery import SurgeryApplication
from api.models.treatments import Attachment

DEFINITION = "surgery"
OVERRIDE_DEFINITION = "surgery_override"
SUBJECT = "surgery_application"
SUBMIT_SCOPE = "surgery.submit"
MAX_ATTACHMENTS = 20


def may_submit_for(actor: Actor, surgeon: User) -> bool:
    if actor.user_id == surgeon.id:
        return True
    return (
        actor.has_role(Role.DEPT_HEAD)
        and actor.department_id is not None
        and actor.department_id == surgeon.department_id
    )


async def resolve_surgeon(session: AsyncSession, actor: Actor, username: str | None) -> User:
    """The operating surgeon: the caller by default; someone else only for their head."""
    if username is None or username == actor.username:
        surgeon = await session.get(User, actor.user_id)
    else:
        surgeon = (
            await session.execute(sa.select(User).where(User.username == username))
        ).scalar_one_or_none()
    if surgeon is None or not surgeon.is_active:
        raise DomainError(
            ErrorCode.NOT_FOUND, "术者不存在 / surgeon not found", field="surgeonUsername"
        )
    if not may_submit_for(actor, surgeon):
        raise forbidden(
            "只能为自己或本科室医师申请手术 / you may apply only for yourself or your department's surgeons"
        )
    if Role.SURGEON not in (surgeon.roles or []):
        raise invalid("surgeonUsername", "该用户不是手术医师 / this user is not a surgeon")
    return surgeon


async def submit_surgery_application(
    session: AsyncSession,
    request: SurgeryRequest,
    *,
    actor: Actor,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> ApprovalInstance:
    """Run the pre-check; if it passes, record the application and route it.

    A failed pre-check raises PRECHECK_FAILED with every finding and writes nothing.
    """
    now = now or utcnow()
    replay_key = f"{actor.user_id}:{idempotency_key}" if idempotency_key else None
    slot = await idempotency.once(session, SUBMIT_SCOPE, replay_key, actor=actor)
    if slot.first is not None:
        instance = await session.get(ApprovalInstance, slot.first["instance_id"])
        assert instance is not None
        return instance

    result, ctx = await _precheck(session, request, actor=actor, now=now)
    _require_passed(result)
    procedure, patient, surgeon = ctx.procedure, ctx.patient, request.surgeon
    assert procedure is not None and patient is not None and surgeon.id is not None
    override = bool(result.warnings)

    application = SurgeryApplication(
        patient_id=request.patient_id,
        surgeon_id=surgeon.id,
        applicant_id=actor.user_id,
        department_id=surgeon.department_id,
        procedure_code=procedure.code,
        grade=procedure.grade,
        planned_at=request.planned_at,
        emergency=request.emergency,
        diagnosis=request.diagnosis.strip(),
        anesthesia=request.anesthesia.strip(),
        preop_assessment=(request.preop_assessment or "").strip() or None,
        consent_signed=request.consent_signed,
        attachments=list(request.attachments),
        privilege_grant_id=ctx.privilege.grant.id
        if ctx.privilege and ctx.privilege.grant
        else None,
        emergency_override=override,
        override_reason=((request.override_reason or "").strip() or None) if override else None,
        submitted_at=now,
    )
    session.add(application)
    await session.flush()
    data = _instance_data(application, procedure, surgeon)
    instance = await approvals.start_instance(
        session,
        definition_key=DEFINITION,
        applicant=surgeon,
        data=data,
        subject_type=SUBJECT,
        subject_id=application.id,
        precheck=result.as_dict(),
        actor=actor,
        now=now,
    )
    application.instance_id = instance.id
    if override:
        await _start_override_confirmation(
            session, application, instance, surgeon, actor=actor, now=now
        )
    await session.flush()
    await slot.done({"instance_id": instance.id})
    return instance


def _instance_data(
    application: SurgeryApplication, procedure: Procedure, surgeon: User
) -> dict[str, Any]:
    """What the approval engine routes on and shows (its conditions read grade, emergency)."""
    return {
        "application_id": application.id,
        "patient_id": application.patient_id,
        "surgeon": surgeon.username,
        "procedure_code": procedure.code,
        "procedure_name": procedure.name,
        "procedure_name_en": procedure.name_en,
        "grade": procedure.grade,
        "level": procedure.level,
        "emergency": application.emergency,
        "planned_at": application.planned_at.isoformat(),
        "emergency_override": application.emergency_override,
    }


async def _precheck(
    session: AsyncSession, request: SurgeryRequest, *, actor: Actor, now: datetime
) -> tuple[PrecheckResult, PrecheckContext]:
    """The definition's rules (or the default ones), and the uploaded documents."""
    _, definition = await approvals.latest_definition(session, DEFINITION)
    rules = list(
        definition.body.precheck if definition.body.precheck is not None else DEFAULT_RULES
    )
    if unknown := unknown_rules(rules):
        raise DomainError(
            ErrorCode.INTERNAL,
            f"流程定义引用了未知的预审规则 / unknown pre-check rules: {', '.join(unknown)}",
        )
    result, ctx = await run_precheck(session, actor, request, rules=rules, now=now)
    result.findings.extend(await _attachment_findings(session, actor, request.attachments))
    return result, ctx


async def _attachment_findings(
    session: AsyncSession, actor: Actor, hashes: list[str]
) -> list[Finding]:
    if len(hashes) > MAX_ATTACHMENTS:
        return [
            Finding(
                "TOO_MANY_ATTACHMENTS",
                f"附件最多{MAX_ATTACHMENTS}个 / at most {MAX_ATTACHMENTS} attachments",
                "attachments",
            )
        ]
    if not hashes:
        return []
    found = set(
        (
            await session.execute(
                sa.select(Attachment.sha256).where(
                    Attachment.sha256.in_(hashes),
                    Attachment.uploaded_by_id == actor.user_id,
                    Attachment.deleted_at.is_(None),
                )
            )
        ).scalars()
    )
    if missing := [h for h in hashes if h not in found]:
        return [
            Finding(
                "ATTACHMENT_NOT_UPLOADED",
                f"有{len(missing)}个附件尚未上传成功，请重新上传 / {len(missing)} attachment(s) were not uploaded; upload them again",
                "attachments",
            )
        ]
    return []


def _require_passed(result: PrecheckResult) -> None:
    if not result.passed:
        raise DomainError(
            ErrorCode.PRECHECK_FAILED,
            f"智能预审未通过（{len(result.findings)}项）/ pre-check failed ({len(result.findings)} findings)",
            details={
                "findings": [
                    {**f.as_dict(), "messages": texts.split(f.message).as_dict()}
                    for f in result.findings
                ]
            },
        )


async def precheck_surgery_application(
    session: AsyncSession, request: SurgeryRequest, *, actor: Actor, now: datetime | None = None
) -> PrecheckResult:
    """智能预审 before submitting: the same rules as the submission, nothing written."""
    result, _ = await _precheck(session, request, actor=actor, now=now or utcnow())
    return result


async def resubmit_surgery_application(
    session: AsyncSession,
    instance: ApprovalInstance,
    request: SurgeryRequest,
    *,
    actor: Actor,
    comment: str | None = None,
    now: datetime | None = None,
) -> ApprovalInstance:
    """After a return to the applicant: the amended application, pre-checked again, goes
    on from the step that returned it. An emergency override is a first-submission thing."""
    now = now or utcnow()
    application = await application_for_instance(session, instance)
    if application is None or instance.kind != DEFINITION:
        raise not_found("手术申请", "surgery application")
    if not approvals.may_resubmit(instance, actor):
        raise DomainError(
            ErrorCode.CONFLICT,
            "只有被退回的申请可由申请人修改后重新提交 / only the applicant may amend and resubmit a returned application",
        )
    if request.surgeon.id != application.surgeon_id:
        raise invalid("surgeonUsername", "重新提交时不能更换术者 / the surgeon cannot change")
    request.emergency_override = application.emergency_override
    request.override_reason = application.override_reason
    result, ctx = await _precheck(session, request, actor=actor, now=now)
    _require_passed(result)
    procedure = ctx.procedure
    assert procedure is not None
    application.patient_id = request.patient_id
    application.procedure_code = procedure.code
    application.grade = procedure.grade
    application.planned_at = request.planned_at
    application.emergency = request.emergency
    application.diagnosis = request.diagnosis.strip()
    application.anesthesia = request.anesthesia.strip()
    application.preop_assessment = (request.preop_assessment or "").strip() or None
    application.consent_signed = request.consent_signed
    application.attachments = list(request.attachments)
    if ctx.privilege and ctx.privilege.grant:
        application.privilege_grant_id = ctx.privilege.grant.id
    await session.flush()
    return await approvals.resubmit_instance(
        session,
        instance,
        actor=actor,
        data=_instance_data(application, procedure, request.surgeon),
        precheck=result.as_dict(),
        comment=comment,
        now=now,
    )


async def _start_override_confirmation(
    session: AsyncSession,
    application: SurgeryApplication,
    instance: ApprovalInstance,
    surgeon: User,
    *,
    actor: Actor,
    now: datetime,
) -> None:
    """An emergency without the privilege: log it on the surgery's history and ask the
    surgeon's superior to confirm it afterwards (its own one-step approval)."""
    await history.record(
        session,
        instance,
        "emergency_override",
        actor=actor,
        at=now,
        surgeon=surgeon.username,
        reason=application.override_reason,
        procedure_code=application.procedure_code,
        grade=application.grade,
    )
    confirmation = await approvals.start_instance(
        session,
        definition_key=OVERRIDE_DEFINITION,
        applicant=surgeon,
        data={
            "surgery_instance_id": instance.id,
            "patient_id": application.patient_id,
            "surgeon": surgeon.username,
            "procedure_code": application.procedure_code,
            "grade": application.grade,
            "reason": application.override_reason,
        },
        subject_type=SUBJECT,
        subject_id=application.id,
        actor=actor,
        now=now,
    )
    application.override_instance_id = confirmation.id


async def application_for_instance(
    session: AsyncSession, instance: ApprovalInstance
) -> SurgeryApplication | None:
    if instance.subject_type != SUBJECT or instance.subject_id is None:
        return None
    return await session.get(SurgeryApplication, instance.subject_id)


async def access_application(
    session: AsyncSession, actor: Actor, instance_id: int
) -> tuple[ApprovalInstance, SurgeryApplication]:
    """The application behind a surgery instance, for whoever may see the instance."""
    instance = await approvals.access_instance(session, actor, instance_id)
    application = await application_for_instance(session, instance)
    if application is None or instance.kind != DEFINITION:
        raise not_found("手术申请", "surgery application")
    return instance, application


async def application_document(
    session: AsyncSession, application: SurgeryApplication, sha256: str
) -> Attachment:
    """One of the pre-operative documents filed with the application (by its sha256)."""
    digest = sha256.strip().lower()
    if digest not in (application.attachments or []):
        raise not_found("术前资料", "pre-operative document")
    found = (
        await session.execute(
            sa.select(Attachment)
            .where(
                Attachment.sha256 == digest,
                Attachment.uploaded_by_id == application.applicant_id,
                Attachment.deleted_at.is_(None),
            )
            .order_by(Attachment.id)
            .limit(1)
        )
    ).scalar_one_or_none()
    if found is None:
        raise not_found("术前资料", "pre-operative document")
    return found
