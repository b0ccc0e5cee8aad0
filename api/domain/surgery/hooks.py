"""What the surgery process adds to the approval engine.

- Decision guard: whenever a step completes, the operating surgeon's privilege is checked
  again for the planned date; a suspension or revocation since submission blocks the
  instance (signatures stay on record).
- 越权 (over-authority): an approval by someone not entitled to approve surgery of that
  grade, or a final approval without every level the grading policy requires, is
  recorded in the instance's history (action `over_authority`). It does not undo the
  decision: the record is for medical affairs' 越权行为 statistics and follow-up.
- On final approval: the 手术审批通知书 PDF, stored under the data dir, its sha256 in the
  history and on the application.
- The emergency override's confirmation by the superior, recorded on the surgery's history.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from api.auth import Actor
from api.domain import approvals

# The history helpers respect the engine's per-action event buffer, so events added by
# these hooks land in the chain in the order they happened.
from api.domain.approvals import history
from api.domain.approvals.flow import load_flow
from api.domain.people import superior_of
from api.domain.privileges import (
    PrivilegeCheck,
    active_suspension_id,
    covering_grant,
    grant_holds_clause,
)
from api.domain.settings_of import settings_of
from api.domain.surgery.applications import (
    DEFINITION,
    OVERRIDE_DEFINITION,
    SUBJECT,
    application_for_instance,
)
from api.domain.surgery.notice import (
    NoticeContent,
    NoticeSignature,
    render_notice_off_loop,
    write_after_commit,
)
from api.models.approvals import ApprovalInstance, ApprovalTask, TaskStatus
from api.models.patients import Patient
from api.models.people import Department, Role, User
from api.models.privileges import PrivilegeGrant, PrivilegeSuspension, Procedure
from api.models.surgery import SurgeryApplication
from api.settings import Settings

# The levels that must approve a surgery of each grade (手术分级审批权限).
REQUIRED_LEVELS: dict[int, tuple[str, ...]] = {
    1: ("dept_head",),
    2: ("dept_head",),
    3: ("dept_head", "medical_affairs"),
    4: ("dept_head", "medical_affairs", "vice_president"),
}
_FACTS = "surgery_facts"
LEVEL_NAMES = {"dept_head": "科主任", "medical_affairs": "医务处", "vice_president": "分管副院长"}


# --- policy: privilege re-check and over-authority ---------------------------------------


@dataclass
class SurgeryFacts:
    """What the guard and the completion hook need about one application, read in two
    statements (see `load_facts`) instead of a query per row."""

    application: SurgeryApplication
    procedure: Procedure
    surgeon: User
    surgeon_head: User | None  # the head of the surgeon's department
    patient: Patient
    department: Department | None  # the application's department
    grant: PrivilegeGrant | None  # a grant covering the procedure at the planned time
    suspension: PrivilegeSuspension | None
    approved: list[
        tuple[ApprovalTask, User]
    ]  # approved tasks with their approvers, in decision order
    _superior: list[User | None] = field(default_factory=list)


@cache
def _facts_statement() -> sa.Select:  # type: ignore[type-arg]
    """Built once: constructing this join costs more than running it."""
    surgeon, head = aliased(User), aliased(User)
    surgeon_dept, app_dept = aliased(Department), aliased(Department)
    app = SurgeryApplication
    return (
        sa.select(
            app, Procedure, surgeon, head, Patient, app_dept, PrivilegeGrant, PrivilegeSuspension
        )
        .join(Procedure, Procedure.code == app.procedure_code)
        .join(surgeon, surgeon.id == app.surgeon_id)
        .join(Patient, Patient.id == app.patient_id)
        .outerjoin(surgeon_dept, surgeon_dept.id == surgeon.department_id)
        .outerjoin(head, head.id == surgeon_dept.head_user_id)
        .outerjoin(app_dept, app_dept.id == app.department_id)
        .outerjoin(PrivilegeGrant, grant_holds_clause(app.surgeon_id, app.planned_at))
        .outerjoin(
            PrivilegeSuspension,
            PrivilegeSuspension.id == active_suspension_id(app.surgeon_id, app.planned_at),
        )
        .where(app.id == sa.bindparam("application_id"))
        .order_by(PrivilegeGrant.id)
    )


async def load_facts(session: AsyncSession, instance: ApprovalInstance) -> SurgeryFacts | None:
    """The application with its procedure, surgeon, the surgeon's head, patient and
    department, and the privilege in force at the planned time (one join); then the
    instance's approved tasks with their approvers (a second statement)."""
    if instance.subject_type != SUBJECT or instance.subject_id is None:
        return None
    # Without autoflush: the engine flushed the decided task itself, and the instance's
    # pending changes go out once, with whatever else the action changes on it.
    with session.no_autoflush:
        rows = (
            await session.execute(_facts_statement(), {"application_id": instance.subject_id})
        ).all()
        if not rows:
            return None
        approved = (
            await session.execute(
                sa.select(ApprovalTask, User)
                .join(User, User.id == ApprovalTask.assignee_id)
                .where(
                    ApprovalTask.instance_id == instance.id,
                    ApprovalTask.status == TaskStatus.APPROVED,
                )
                .order_by(ApprovalTask.decided_at, ApprovalTask.id)
            )
        ).all()
    application, procedure, surgeon_row, head_row, patient, department, _, suspension = rows[0]
    grants = [r[6] for r in rows if r[6] is not None]
    return SurgeryFacts(
        application=application,
        procedure=procedure,
        surgeon=surgeon_row,
        surgeon_head=head_row,
        patient=patient,
        department=department,
        grant=covering_grant(grants, procedure),
        suspension=suspension,
        approved=[(t, u) for t, u in approved],
    )


async def levels_of(session: AsyncSession, decider: User, facts: SurgeryFacts) -> set[str]:
    """The approval levels `decider` holds for the surgery."""
    levels = set()
    surgeon, head = facts.surgeon, facts.surgeon_head
    if head is not None and head.id == decider.id and head.id != surgeon.id:
        levels.add("dept_head")
    elif head is not None and head.id == surgeon.id:
        # A department head's own operation goes to their superior (read once, rarely).
        if not facts._superior:
            facts._superior.append(await superior_of(session, surgeon))
        superior = facts._superior[0]
        if superior is not None and superior.id == decider.id:
            levels.add("dept_head")
    roles = set(decider.roles or [])
    if Role.MEDICAL_AFFAIRS in roles:
        levels.add("medical_affairs")
    if Role.VICE_PRESIDENT in roles:
        levels.add("vice_president")
    return levels


async def _record_over_authority(
    session: AsyncSession,
    instance: ApprovalInstance,
    *,
    decider: User | None,
    at: datetime,
    code: str,
    message: str,
    **data: object,
) -> None:
    actor = Actor.from_user(decider) if decider is not None else None
    await history.record(
        session,
        instance,
        "over_authority",
        actor=actor,
        at=at,
        code=code,
        message=message,
        approver=decider.username if decider else None,
        **data,
    )


async def _check_step_approvers(
    session: AsyncSession, instance: ApprovalInstance, facts: SurgeryFacts, now: datetime
) -> None:
    """Every approver of the step just completed must hold a level the grade requires."""
    if not instance.completed_steps:
        return
    step_id = instance.completed_steps[-1]
    application = facts.application
    required = set(REQUIRED_LEVELS[application.grade])
    for task, decider in facts.approved:
        if task.step_id != step_id or task.round != instance.round:
            continue
        if not (await levels_of(session, decider, facts)) & required:
            await _record_over_authority(
                session,
                instance,
                decider=decider,
                at=task.decided_at or now,
                code="APPROVER_NOT_ENTITLED",
                message=f"越权审批：审批人无{application.grade}级手术审批权限 / approver not entitled for grade-{application.grade} surgery",
                task_id=task.id,
                step=step_id,
                grade=application.grade,
            )


async def surgery_guard(
    session: AsyncSession, instance: ApprovalInstance, now: datetime
) -> list[approvals.Finding]:
    facts = await load_facts(session, instance)
    if facts is None:
        return []
    # Kept for the completion hook that follows in the same action (final approval).
    session.info.setdefault(_FACTS, {})[_facts_key(instance)] = facts
    await _check_step_approvers(session, instance, facts, now)
    check = PrivilegeCheck(facts.grant, facts.suspension)
    procedure = facts.procedure
    if check.suspension is not None:
        return [
            approvals.Finding("PRIVILEGE_SUSPENDED", check.message(procedure), "surgeonUsername")
        ]
    if check.grant is None and not facts.application.emergency_override:
        return [
            approvals.Finding(
                "NO_PRIVILEGE",
                check.message(procedure) + "（授权已撤销或过期 / revoked or expired）",
                "surgeonUsername",
            )
        ]
    return []


def _facts_key(instance: ApprovalInstance) -> tuple[int | None, int, tuple[str, ...]]:
    # Nothing the facts hold changes until another step completes (which runs the guard).
    return instance.id, instance.round, tuple(instance.completed_steps or ())


async def _facts_for_completion(
    session: AsyncSession, instance: ApprovalInstance
) -> SurgeryFacts | None:
    """The facts the guard just read in this action, or read now."""
    facts = session.info.get(_FACTS, {}).pop(_facts_key(instance), None)
    return facts if facts is not None else await load_facts(session, instance)


async def _check_required_levels(
    session: AsyncSession,
    instance: ApprovalInstance,
    facts: SurgeryFacts,
    actor: Actor,
    now: datetime,
) -> None:
    """Final approval: every level the grade requires must be among the approvers."""
    application = facts.application
    covered: set[str] = set()
    for _, decider in facts.approved:
        covered |= await levels_of(session, decider, facts)
    missing = [lv for lv in REQUIRED_LEVELS[application.grade] if lv not in covered]
    if missing:
        final = await session.get(User, actor.user_id) if actor.user_id else None
        names = "、".join(LEVEL_NAMES[m] for m in missing)
        await _record_over_authority(
            session,
            instance,
            decider=final,
            at=now,
            code="MISSING_REQUIRED_LEVELS",
            message=f"越权审批：{application.grade}级手术未经{names}审批即通过 / grade-{application.grade} surgery approved without: {', '.join(missing)}",
            grade=application.grade,
            missing=missing,
        )


# --- the approval notice ------------------------------------------------------------------


def notice_relative_path(instance_id: int) -> str:
    return f"attachments/surgery/{instance_id}/surgery-approval-{instance_id}.pdf"


async def generate_notice(
    session: AsyncSession,
    instance: ApprovalInstance,
    facts: SurgeryFacts,
    *,
    actor: Actor,
    now: datetime,
) -> str:
    """Render, store and record the 手术审批通知书; returns its sha256."""
    assert instance.id is not None
    settings = settings_of(session)
    application, procedure, surgeon, department = (
        facts.application,
        facts.procedure,
        facts.surgeon,
        facts.department,
    )
    definition = (await load_flow(session, instance)).definition
    signatures = [
        NoticeSignature(
            step=definition.step(task.step_id).name.zh,
            approver=decider.display_name,
            decision="approve",
            at=task.decided_at or now,
        )
        for task, decider in facts.approved
    ]
    chain_hash = await history.head_hash(session, instance.id)  # must include "completed"
    content = NoticeContent(
        application_no=f"SS-{instance.created_at.astimezone(settings.tz):%Y%m%d}-{instance.id:06d}",
        patient_name=facts.patient.name,
        patient_mrn=facts.patient.mrn,
        procedure_code=procedure.code,
        procedure_name=procedure.name,
        grade=procedure.grade,
        level=procedure.level,
        surgeon=surgeon.display_name,
        department=department.name if department else "",
        planned_at=application.planned_at,
        emergency=application.emergency,
        anesthesia=application.anesthesia,
        diagnosis=application.diagnosis,
        approved_at=now,
        signatures=signatures,
        override_reason=application.override_reason if application.emergency_override else None,
        chain_hash=chain_hash,
    )
    pdf = await render_notice_off_loop(content, tz=settings.tz)
    relative = notice_relative_path(instance.id)
    digest = hashlib.sha256(pdf).hexdigest()
    write_after_commit(session, Path(settings.data_dir), relative, pdf)
    application.notice_path = relative
    application.notice_sha256 = digest
    application.notice_generated_at = now
    instance.pdf_path = relative
    await history.record(
        session,
        instance,
        "notice_generated",
        actor=actor,
        at=now,
        document="手术审批通知书",
        path=relative,
        sha256=digest,
        bytes=len(pdf),
    )
    return digest


def notice_file(settings: Settings, application: SurgeryApplication) -> bytes | None:
    """The stored PDF, if its bytes still match the recorded sha256."""
    if not application.notice_path or not application.notice_sha256:
        return None
    path = (Path(settings.data_dir) / application.notice_path).resolve()
    if not path.is_file():
        return None
    data = path.read_bytes()
    return data if hashlib.sha256(data).hexdigest() == application.notice_sha256 else None


async def on_surgery_approved(
    session: AsyncSession, instance: ApprovalInstance, actor: Actor, now: datetime
) -> None:
    facts = await _facts_for_completion(session, instance)
    if facts is None:
        return
    await _check_required_levels(session, instance, facts, actor, now)
    await generate_notice(session, instance, facts, actor=actor, now=now)


# --- the emergency override's confirmation -------------------------------------------------


async def _override_outcome(
    session: AsyncSession,
    instance: ApprovalInstance,
    actor: Actor,
    now: datetime,
    *,
    confirmed: bool,
) -> None:
    application = await application_for_instance(session, instance)
    if application is None or application.instance_id is None:
        return
    if confirmed:
        application.override_confirmed_at = now
        application.override_confirmed_by = actor.user_id or None
        await session.flush()
    surgery_instance = await session.get(ApprovalInstance, application.instance_id)
    assert surgery_instance is not None
    await history.record(
        session,
        surgery_instance,
        "override_confirmed" if confirmed else "override_not_confirmed",
        actor=actor,
        at=now,
        confirmation_instance_id=instance.id,
        status=instance.status,
    )


async def on_override_confirmed(
    session: AsyncSession, instance: ApprovalInstance, actor: Actor, now: datetime
) -> None:
    await _override_outcome(session, instance, actor, now, confirmed=True)


async def on_override_closed(
    session: AsyncSession, instance: ApprovalInstance, actor: Actor, now: datetime
) -> None:
    await _override_outcome(session, instance, actor, now, confirmed=False)


def register_hooks() -> None:
    """Give the approval engine the surgery guard and hooks (from the assembly,
    `api.assembly.install_domain`; running it again changes nothing)."""
    approvals.register_decision_guard(DEFINITION, surgery_guard)
    approvals.register_completion_hook(DEFINITION, on_surgery_approved)
    approvals.register_completion_hook(OVERRIDE_DEFINITION, on_override_confirmed)
    approvals.register_closing_hook(OVERRIDE_DEFINITION, on_override_closed)
