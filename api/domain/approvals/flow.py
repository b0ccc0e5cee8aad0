"""How an instance moves: who gets a task, when a step is complete, how it ends.

The instance row is the lock: every action that changes an instance first takes
`SELECT … FOR UPDATE` on it (`lock_instance`), so two decisions on one instance happen
one after the other and the second sees what the first did.

Where the flow stands is kept on the instance: `stage_index` (the current stage),
`completed_steps` (steps finished in this pass) and `round` (bumped at every return, so
tasks of an earlier pass never count towards a step again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import SYSTEM_ACTOR, Actor
from api.domain.approvals import history, notify
from api.domain.approvals.deadlines import due_after
from api.domain.approvals.definition import AssigneeRule, Definition, Step, holds
from api.domain.approvals.policy import Finding, run_closing_hooks, run_completion_hooks, run_guards
from api.domain.approvals.registry import definition_by_id, parse_stored
from api.domain.people import department_head, superior_of, user_is_staff, users_with_role
from api.errors import DomainError, ErrorCode, not_found
from api.models.approvals import (
    ApprovalDefinition,
    ApprovalInstance,
    ApprovalTask,
    InstanceStatus,
    TaskKind,
    TaskStatus,
)
from api.models.people import User

_FLOWS = "approval_locked_flows"


@dataclass
class Flow:
    """An instance with its definition and applicant, loaded once per action."""

    instance: ApprovalInstance
    definition: Definition
    applicant: User

    @property
    def data(self) -> dict:  # type: ignore[type-arg]
        return self.instance.data or {}


async def lock_flow(session: AsyncSession, instance_id: int) -> Flow:
    """Take the instance's row lock and read its current state (what others committed),
    with its definition and applicant in the same round trip."""
    stmt = (
        sa.select(ApprovalInstance, ApprovalDefinition, User)
        .join(ApprovalDefinition, ApprovalDefinition.id == ApprovalInstance.definition_id)
        .join(User, User.id == ApprovalInstance.applicant_id)
        .where(ApprovalInstance.id == instance_id)
        .with_for_update(of=ApprovalInstance)
        .execution_options(populate_existing=True)
    )
    row = (await session.execute(stmt)).one_or_none()
    if row is None:
        raise not_found("审批单", "approval instance")
    instance, definition_row, applicant = row
    flow = Flow(instance, parse_stored(definition_row), applicant)
    # Held here so `load_flow` finds it (the session's identity map holds rows weakly).
    session.info.setdefault(_FLOWS, {})[instance_id] = flow
    return flow


async def lock_instance(session: AsyncSession, instance_id: int) -> ApprovalInstance:
    return (await lock_flow(session, instance_id)).instance


async def reload_task(session: AsyncSession, task_id: int) -> ApprovalTask:
    stmt = (
        sa.select(ApprovalTask)
        .where(ApprovalTask.id == task_id)
        .execution_options(populate_existing=True)
    )
    task = (await session.execute(stmt)).scalar_one_or_none()
    if task is None:
        raise not_found("审批任务", "approval task")
    return task


async def load_flow(session: AsyncSession, instance: ApprovalInstance) -> Flow:
    cached = session.info.get(_FLOWS, {}).get(instance.id)
    if cached is not None and cached.instance is instance:
        return cached
    _, definition = await definition_by_id(session, instance.definition_id)
    applicant = await session.get(User, instance.applicant_id)
    assert applicant is not None
    return Flow(instance, definition, applicant)


def closed_error(instance: ApprovalInstance) -> DomainError:
    if instance.status == InstanceStatus.BLOCKED:
        return DomainError(
            ErrorCode.PRIVILEGE_BLOCKED,
            f"审批已被拦截 / the approval is blocked: {instance.blocked_reason or ''}".strip(),
            details={"instanceId": str(instance.id)},
        )
    return DomainError(
        ErrorCode.INSTANCE_CLOSED,
        f"审批已结束（{instance.status}） / the approval has already ended ({instance.status})",
        details={"instanceId": str(instance.id)},
    )


# --- assignees -----------------------------------------------------------------------


async def resolve_assignees(
    session: AsyncSession, rule: AssigneeRule, applicant: User
) -> list[User]:
    """The staff a rule names, never the applicant (nobody approves their own request).

    A department head applying is routed to their own superior instead.
    """
    if rule.user is not None:
        user = (
            await session.execute(
                sa.select(User).where(User.username == rule.user, User.is_active.is_(True))
            )
        ).scalar_one_or_none()
        users = [user] if user else []
    elif rule.department_head is not None:
        head = await department_head(session, applicant.department_id)
        if head is not None and head.id == applicant.id:
            head = await superior_of(session, applicant)
            if head is not None and head.id == applicant.id:
                head = None
        users = [head] if head and head.is_active else []
    else:
        assert rule.role is not None
        scope = applicant.department_id if rule.scope == "applicant_department" else None
        users = await users_with_role(session, rule.role, department_id=scope)
    # Only staff hold tasks: a patient named by a rule (or a role shared with one) is skipped.
    return [u for u in users if u.id != applicant.id and user_is_staff(u)]


# --- tasks ---------------------------------------------------------------------------


def task_due(flow: Flow, step: Step, now: datetime) -> datetime | None:
    """The step's own deadline, never later than the instance's."""
    working = bool(flow.definition.body.deadline and flow.definition.body.deadline.working_hours)
    step_due = due_after(now, step.deadline_hours, working_hours=working)
    instance_due = flow.instance.due_at
    if step_due and instance_due:
        return min(step_due, instance_due)
    return step_due or instance_due


async def add_task(
    session: AsyncSession,
    flow: Flow,
    *,
    step_id: str,
    stage_index: int,
    branch: str | None,
    assignee: User,
    due_at: datetime | None,
    actor: Actor | None,
    now: datetime,
    kind: TaskKind = TaskKind.NORMAL,
    transferred_from: ApprovalTask | None = None,
    added_by: Actor | None = None,
) -> ApprovalTask:
    instance = flow.instance
    assert instance.id is not None and assignee.id is not None
    task = ApprovalTask(
        instance_id=instance.id,
        step_id=step_id,
        stage_index=stage_index,
        branch=branch,
        round=instance.round,
        assignee_id=assignee.id,
        status=TaskStatus.PENDING,
        kind=kind,
        due_at=due_at,
        transferred_from_id=transferred_from.id if transferred_from else None,
        added_by_id=added_by.user_id if added_by else None,
        created_at=now,
    )
    session.add(task)
    await session.flush()
    await history.record(
        session,
        instance,
        "task_created",
        actor=actor,
        at=now,
        task_id=task.id,
        step=step_id,
        branch=branch,
        assignee=assignee.username,
        task_kind=str(kind),
        due_at=due_at.isoformat() if due_at else None,
    )
    step_name = flow.definition.step(step_id).name
    await notify.notify(
        session,
        flow.definition,
        flow.instance,
        recipient_id=assignee.id,
        kind=notify.TASK_ASSIGNED,
        key=f"task:{task.id}:assigned",
        zh=f"待您审批（{step_name.zh}）",
        en=f"Awaiting your decision ({step_name.en or step_id})",
        task=task,
    )
    return task


async def live_tasks(
    session: AsyncSession, instance: ApprovalInstance, step_id: str | None = None
) -> list[ApprovalTask]:
    """Tasks of the current round that still count (not cancelled, not handed on)."""
    stmt = (
        sa.select(ApprovalTask)
        .where(
            ApprovalTask.instance_id == instance.id,
            ApprovalTask.round == instance.round,
            ApprovalTask.status.notin_([TaskStatus.CANCELLED, TaskStatus.TRANSFERRED]),
        )
        .order_by(ApprovalTask.id)
        .execution_options(populate_existing=True)
    )
    if step_id is not None:
        stmt = stmt.where(ApprovalTask.step_id == step_id)
    return list((await session.execute(stmt)).scalars())


async def cancel_pending(
    session: AsyncSession,
    instance: ApprovalInstance,
    *,
    actor: Actor | None,
    now: datetime,
    reason: str,
    tasks: list[ApprovalTask] | None = None,
) -> list[int]:
    """Cancel pending tasks (all of the instance's, or the ones given) and say so in the history."""
    cancelled: list[int] = []
    if tasks is None:
        # One statement; the session's copies of these tasks are updated from RETURNING.
        result = await session.execute(
            sa.update(ApprovalTask)
            .where(
                ApprovalTask.instance_id == instance.id, ApprovalTask.status == TaskStatus.PENDING
            )
            .values(status=TaskStatus.CANCELLED, decided_at=now)
            .returning(ApprovalTask.id)
            .execution_options(synchronize_session="fetch")
        )
        cancelled = sorted(result.scalars())
    else:
        for task in tasks:
            if task.status == TaskStatus.PENDING:
                task.status = TaskStatus.CANCELLED
                task.decided_at = now
                assert task.id is not None
                cancelled.append(task.id)
        if cancelled:
            await session.flush()
    if cancelled:
        await history.record(
            session,
            instance,
            "tasks_cancelled",
            actor=actor,
            at=now,
            task_ids=cancelled,
            reason=reason,
        )
    return cancelled


def step_complete(step: Step, tasks: list[ApprovalTask]) -> bool:
    """会签 (all): every live task approved. 或签 (any): one regular approval. Either way an
    added signer (加签) must approve too."""
    regular = [t for t in tasks if t.kind == TaskKind.NORMAL]
    added = [t for t in tasks if t.kind == TaskKind.ADDED_SIGNER]
    if not all(t.status == TaskStatus.APPROVED for t in added):
        return False
    if step.mode == "any":
        return any(t.status == TaskStatus.APPROVED for t in regular)
    return bool(regular) and all(t.status == TaskStatus.APPROVED for t in regular)


# --- moving on -------------------------------------------------------------------------


async def advance(
    session: AsyncSession, flow: Flow, *, actor: Actor | None, now: datetime, fresh: bool = False
) -> None:
    """Open the tasks of the first stage with unfinished steps; approve when none is left.

    Within a stage every branch runs its first unfinished applicable step; branches that
    are finished (e.g. a countersign branch that approved before a return) stand.
    `fresh`: the round just began (start, return, resubmit), so no task of it is pending;
    moving into a later stage is the same, so only staying in one stage needs a look.
    """
    instance, definition, data = flow.instance, flow.definition, flow.data
    entry_stage = instance.stage_index
    pending_steps: set[str] | None = set() if fresh else None
    while instance.stage_index < len(definition.stages):
        stage_index = instance.stage_index
        if definition.stage_applies(stage_index, data):
            open_steps: list[tuple[str | None, Step]] = []
            for branch, steps in definition.branches(stage_index):
                step = next(
                    (
                        s
                        for s in steps
                        if holds(s.when, data) and s.id not in instance.completed_steps
                    ),
                    None,
                )
                if step is not None:
                    open_steps.append((branch, step))
            if open_steps:
                if pending_steps is None and stage_index != entry_stage:
                    pending_steps = set()
                if pending_steps is None:
                    pending_steps = {
                        t.step_id
                        for t in await live_tasks(session, instance)
                        if t.status == TaskStatus.PENDING
                    }
                for branch, step in open_steps:
                    if step.id not in pending_steps:
                        await open_step(
                            session,
                            flow,
                            step,
                            stage_index=stage_index,
                            branch=branch,
                            actor=actor,
                            now=now,
                        )
                return
        instance.stage_index += 1
    await finish_approved(session, flow, actor=actor, now=now)


async def open_step(
    session: AsyncSession,
    flow: Flow,
    step: Step,
    *,
    stage_index: int,
    branch: str | None,
    actor: Actor | None,
    now: datetime,
) -> None:
    assignees = await resolve_assignees(session, step.assignee, flow.applicant)
    if not assignees:
        raise DomainError(
            ErrorCode.NO_ASSIGNEE,
            f"无法确定“{step.name.zh}”的审批人，请联系管理员 / no approver found for step {step.id}",
            details={"step": step.id},
        )
    due = task_due(flow, step, now)
    for user in assignees:
        await add_task(
            session,
            flow,
            step_id=step.id,
            stage_index=stage_index,
            branch=branch,
            assignee=user,
            due_at=due,
            actor=actor,
            now=now,
        )


async def complete_step(
    session: AsyncSession, flow: Flow, step: Step, *, actor: Actor, now: datetime
) -> None:
    """A step is done: check policy, then move on (or block)."""
    instance = flow.instance
    instance.completed_steps = [*instance.completed_steps, step.id]
    await history.record(session, instance, "step_completed", actor=actor, at=now, step=step.id)
    findings = await run_guards(session, instance, now)
    if findings:
        await block(session, flow, findings, actor=actor, now=now)
        return
    await advance(session, flow, actor=actor, now=now)


async def close(
    session: AsyncSession,
    flow: Flow,
    status: InstanceStatus,
    *,
    actor: Actor | None,
    now: datetime,
    nothing_pending: bool = False,
) -> str:
    """End the instance: cancel what is pending and the reminders that would chase it.

    `nothing_pending`: the caller knows no task is pending (every step just completed)."""
    instance = flow.instance
    old = instance.status
    instance.status = status
    instance.closed_at = now
    if not nothing_pending:
        await cancel_pending(session, instance, actor=actor, now=now, reason=str(status))
    await notify.cancel_reminders(session, instance)
    await session.flush()
    return old


async def finish_approved(
    session: AsyncSession, flow: Flow, *, actor: Actor | None, now: datetime
) -> None:
    instance = flow.instance
    old = await close(
        session, flow, InstanceStatus.APPROVED, actor=actor, now=now, nothing_pending=True
    )
    await history.record(
        session,
        instance,
        "completed",
        actor=actor,
        at=now,
        old_status=old,
        new_status=InstanceStatus.APPROVED,
    )
    await notify.notify(
        session,
        flow.definition,
        instance,
        recipient_id=flow.applicant.id or 0,
        kind=notify.APPROVED,
        key=f"instance:{instance.id}:approved",
        zh="审批已通过",
        en="Approved",
    )
    await history.flush_history(session)  # hooks may append to the chain themselves
    await run_completion_hooks(session, instance, actor or SYSTEM_ACTOR, now)


async def block(
    session: AsyncSession, flow: Flow, findings: list[Finding], *, actor: Actor, now: datetime
) -> None:
    instance = flow.instance
    instance.blocked_reason = "；".join(f.message for f in findings)[:1000]
    old = await close(session, flow, InstanceStatus.BLOCKED, actor=actor, now=now)
    await history.record(
        session,
        instance,
        "blocked",
        actor=actor,
        at=now,
        old_status=old,
        new_status=InstanceStatus.BLOCKED,
        findings=[f.as_dict() for f in findings],
    )
    await notify.notify(
        session,
        flow.definition,
        instance,
        recipient_id=flow.applicant.id or 0,
        kind=notify.BLOCKED,
        key=f"instance:{instance.id}:blocked",
        zh="审批被拦截",
        en="Blocked",
        body=instance.blocked_reason,
    )
    await history.flush_history(session)
    await run_closing_hooks(session, instance, actor, now)
