"""The named actions on approvals. None of them commits: the caller's transaction does.

Every action that changes a running instance locks its row first (`lock_instance`), then
re-reads what it is about to change, so concurrent taps, countersigners deciding at the
same moment, or a withdraw racing an approval come out as exactly one outcome.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api import idempotency
from api.audit import canonical_json
from api.auth import Actor
from api.domain.approvals import history, notify
from api.domain.approvals.access import (
    check_copy_target,
    check_step_holder,
    require_copier,
    task_not_found,
)
from api.domain.approvals.deadlines import due_after
from api.domain.approvals.definition import APPLICANT, Definition
from api.domain.approvals.flow import (
    Flow,
    add_task,
    advance,
    cancel_pending,
    close,
    closed_error,
    complete_step,
    live_tasks,
    load_flow,
    lock_instance,
    reload_task,
    step_complete,
)
from api.domain.approvals.policy import run_closing_hooks
from api.domain.approvals.registry import latest_definition
from api.domain.people import require_staff
from api.errors import DomainError, ErrorCode, forbidden, invalid
from api.models.approvals import (
    CLOSED_STATUSES,
    ApprovalCarbonCopy,
    ApprovalInstance,
    ApprovalTask,
    InstanceStatus,
    TaskKind,
    TaskStatus,
)
from api.models.base import utcnow
from api.models.people import Role, User

Decision = Literal["approve", "reject", "return"]
DECISIONS = ("approve", "reject", "return")
MAX_COMMENT_LENGTH = 2000  # the same limit as settings.max_comment_length
MAX_DATA_BYTES = 64 * 1024
MAX_IDEMPOTENCY_KEY = 120
URGE_INTERVAL = timedelta(minutes=30)  # one 催办 per task per half hour
DECIDE_SCOPE = "approval.decide"
OVERSEER_ROLES = (Role.MEDICAL_AFFAIRS, Role.VICE_PRESIDENT, Role.ADMIN)


def check_comment(comment: str | None, *, required: bool = False) -> str | None:
    if comment is not None:
        comment = comment.strip() or None
    if comment is not None and len(comment) > MAX_COMMENT_LENGTH:
        raise invalid(
            "comment",
            f"意见不能超过 {MAX_COMMENT_LENGTH} 字 / comment longer than {MAX_COMMENT_LENGTH} characters",
        )
    if required and not comment:
        raise invalid("comment", "请填写意见 / a comment is required")
    return comment


def _check_data(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise invalid("data", "申请数据必须是对象 / data must be an object")
    if len(canonical_json(data).encode()) > MAX_DATA_BYTES:
        raise invalid("data", "申请数据过大 / data too large")
    return data


def _require_running(instance: ApprovalInstance) -> None:
    if instance.status in CLOSED_STATUSES:
        raise closed_error(instance)


def _require_applicant(instance: ApprovalInstance, actor: Actor) -> None:
    if instance.applicant_id != actor.user_id:
        raise forbidden("只有申请人可以执行此操作 / only the applicant may do this")


def may_decide(task: ApprovalTask, actor: Actor) -> bool:
    """A pending task is decided by its assignee (what `decide_task` checks first)."""
    return task.assignee_id == actor.user_id and task.status == TaskStatus.PENDING


def may_withdraw(instance: ApprovalInstance, actor: Actor) -> bool:
    """撤销 is open to the applicant until the instance ends (what `withdraw_instance` checks)."""
    return instance.applicant_id == actor.user_id and instance.status not in CLOSED_STATUSES


def may_resubmit(instance: ApprovalInstance, actor: Actor) -> bool:
    """Resubmission is open to the applicant of a returned instance."""
    return instance.applicant_id == actor.user_id and instance.status == InstanceStatus.RETURNED


# --- starting ----------------------------------------------------------------------------


@history.batched
async def start_instance(
    session: AsyncSession,
    *,
    definition_key: str,
    applicant: User,
    data: dict[str, Any],
    subject_type: str | None = None,
    subject_id: int | None = None,
    precheck: dict[str, Any] | None = None,
    actor: Actor,
    now: datetime | None = None,
) -> ApprovalInstance:
    """Start an instance on the newest version of `definition_key` and open its first tasks."""
    now = now or utcnow()
    data = _check_data(data)
    row, definition = await latest_definition(session, definition_key)
    assert row.id is not None and applicant.id is not None
    working = bool(definition.body.deadline and definition.body.deadline.working_hours)
    instance = ApprovalInstance(
        kind=definition.key,
        definition_id=row.id,
        definition_version=row.version,
        applicant_id=applicant.id,
        subject_type=subject_type,
        subject_id=subject_id,
        data=data,
        precheck=precheck,
        status=InstanceStatus.RUNNING,
        stage_index=0,
        completed_steps=[],
        round=1,
        due_at=due_after(now, definition.deadline_hours(data), working_hours=working),
        created_at=now,
    )
    session.add(instance)
    await session.flush()
    await history.record(
        session,
        instance,
        "submitted",
        actor=actor,
        at=now,
        definition=definition.key,
        version=row.version,
        applicant=applicant.username,
        subject_type=subject_type,
        subject_id=subject_id,
        new_status=InstanceStatus.RUNNING,
        due_at=instance.due_at.isoformat() if instance.due_at else None,
    )
    await advance(session, Flow(instance, definition, applicant), actor=actor, now=now, fresh=True)
    return instance


# --- deciding ------------------------------------------------------------------------------


@history.batched
async def decide_task(
    session: AsyncSession,
    task: ApprovalTask,
    *,
    actor: Actor,
    decision: Decision | str,
    comment: str | None = None,
    return_to: str | None = None,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> ApprovalTask:
    """Approve, reject or return (退回) one task.

    Exactly one decision per task: a second one gets ALREADY_DECIDED, unless it repeats
    the first one's idempotency key, in which case it gets the first result.
    """
    now = now or utcnow()
    require_staff(actor, "只有医院职工可以审批 / only hospital staff may decide approvals")
    decision = str(decision).lower()
    if decision not in DECISIONS:
        raise invalid("decision", "无效的审批决定 / decision must be approve, reject or return")
    comment = check_comment(comment, required=decision == "return")
    if idempotency_key is not None and not (0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY):
        raise invalid(
            "idempotencyKey",
            f"幂等键长度须为 1-{MAX_IDEMPOTENCY_KEY} / idempotency key must be 1-{MAX_IDEMPOTENCY_KEY} characters",
        )

    instance = await lock_instance(session, task.instance_id)
    task = await reload_task(session, task.id or 0)
    replay_key = f"{task.id}:{idempotency_key}" if idempotency_key else None
    if await idempotency.recall(session, DECIDE_SCOPE, replay_key, actor=actor) is not None:
        return task  # the same tap again: the first result
    if task.assignee_id != actor.user_id:
        raise task_not_found()
    if task.status != TaskStatus.PENDING:
        if task.status == TaskStatus.CANCELLED and instance.status in CLOSED_STATUSES:
            raise closed_error(instance)
        raise DomainError(
            ErrorCode.ALREADY_DECIDED,
            f"该任务已处理（{task.status}） / this task was already decided ({task.status})",
            details={"taskId": str(task.id), "status": task.status},
        )
    _require_running(instance)

    flow = await load_flow(session, instance)
    task.comment = comment
    task.decided_at = now
    if decision == "approve":
        await _approve(session, flow, task, actor=actor, now=now)
    elif decision == "reject":
        await _reject(session, flow, task, actor=actor, now=now)
    else:
        await _return(session, flow, task, actor=actor, target=return_to or APPLICANT, now=now)
    await idempotency.remember(
        session, DECIDE_SCOPE, replay_key, {"task_id": task.id, "status": task.status}, actor=actor
    )
    return task


async def _notify_decided(
    session: AsyncSession,
    flow: Flow,
    task: ApprovalTask,
    *,
    actor: Actor,
    zh: str,
    en: str,
    kind: str,
) -> None:
    await notify.notify(
        session,
        flow.definition,
        flow.instance,
        recipient_id=flow.applicant.id or 0,
        kind=kind,
        key=f"task:{task.id}:decided",
        zh=f"{actor.display_name or actor.username}{zh}",
        en=f"{en} by {actor.username}",
        body=task.comment or "",
        task=task,
    )


async def _approve(
    session: AsyncSession, flow: Flow, task: ApprovalTask, *, actor: Actor, now: datetime
) -> None:
    instance = flow.instance
    step = flow.definition.step(task.step_id)
    task.status = TaskStatus.APPROVED
    await session.flush()
    await history.record(
        session,
        instance,
        "approved",
        actor=actor,
        at=now,
        task_id=task.id,
        step=task.step_id,
        old_status=TaskStatus.PENDING,
        new_status=TaskStatus.APPROVED,
        comment=task.comment,
    )
    tasks = await live_tasks(session, instance, task.step_id)
    settled = [task.id or 0]
    if step.mode == "any" and task.kind == TaskKind.NORMAL:
        # 或签: the first regular approval settles the step for the other assignees.
        siblings = [
            t for t in tasks if t.kind == TaskKind.NORMAL and t.status == TaskStatus.PENDING
        ]
        settled += await cancel_pending(
            session, instance, actor=actor, now=now, reason="any_sign_completed", tasks=siblings
        )
        tasks = [t for t in tasks if t.status != TaskStatus.CANCELLED]
    if step_complete(step, tasks):
        await complete_step(session, flow, step, actor=actor, now=now)
    if (
        instance.status == InstanceStatus.RUNNING
    ):  # an ending sends its own notice and cancels every reminder
        await notify.end_task_reminders(session, instance, settled)
        await _notify_decided(
            session, flow, task, actor=actor, zh="已同意", en="Approved", kind=notify.DECIDED
        )


async def _reject(
    session: AsyncSession, flow: Flow, task: ApprovalTask, *, actor: Actor, now: datetime
) -> None:
    instance = flow.instance
    task.status = TaskStatus.REJECTED
    old = await close(session, flow, InstanceStatus.REJECTED, actor=actor, now=now)
    await history.record(
        session,
        instance,
        "rejected",
        actor=actor,
        at=now,
        task_id=task.id,
        step=task.step_id,
        old_status=old,
        new_status=InstanceStatus.REJECTED,
        comment=task.comment,
    )
    await notify.notify(
        session,
        flow.definition,
        instance,
        recipient_id=flow.applicant.id or 0,
        kind=notify.REJECTED,
        key=f"instance:{instance.id}:rejected",
        zh="审批未通过",
        en="Rejected",
        body=task.comment or "",
        task=task,
    )
    await history.flush_history(session)
    await run_closing_hooks(session, instance, actor, now)


def _steps_to_redo(flow: Flow, target: str, returning: str) -> set[str]:
    """The target step and everything after it up to the returning step. Parallel
    branches beside the returning one (and beside the target) keep their approvals."""
    placed = flow.definition.placed
    t, s = placed[target], placed[returning]
    redo: set[str] = set()
    for step_id, p in placed.items():
        if t.stage_index < p.stage_index < s.stage_index:
            redo.add(step_id)
        elif (
            p.stage_index == t.stage_index
            and p.branch == t.branch
            and p.position >= t.position
            and (p.stage_index < s.stage_index or p.position <= s.position)
        ):
            redo.add(step_id)
        elif (
            p.stage_index == s.stage_index > t.stage_index
            and p.branch == s.branch
            and p.position <= s.position
        ):
            redo.add(step_id)
    return redo


def may_return_to(
    definition: Definition, instance: ApprovalInstance, task: ApprovalTask, target: str
) -> bool:
    """退回 to a step: one completed in this pass, before the returning task's step (an
    earlier stage, or earlier in the same branch)."""
    placed = definition.placed
    if target not in placed or target not in instance.completed_steps or task.step_id not in placed:
        return False
    t, s = placed[target], placed[task.step_id]
    if t.stage_index > s.stage_index:
        return False
    return not (
        t.stage_index == s.stage_index and (t.branch != s.branch or t.position >= s.position)
    )


def return_targets(
    definition: Definition, instance: ApprovalInstance, task: ApprovalTask
) -> list[str]:
    """The steps a return from `task` may go to, in the definition's order (besides the
    applicant, always allowed)."""
    return [
        step_id
        for step_id in definition.placed
        if may_return_to(definition, instance, task, step_id)
    ]


def _check_return_target(flow: Flow, task: ApprovalTask, target: str) -> None:
    if not may_return_to(flow.definition, flow.instance, task, target):
        raise invalid(
            "returnTo",
            "只能退回给申请人或之前已通过的步骤 / return to the applicant or an earlier, completed step",
        )


async def _return(
    session: AsyncSession,
    flow: Flow,
    task: ApprovalTask,
    *,
    actor: Actor,
    target: str,
    now: datetime,
) -> None:
    instance = flow.instance
    if target != APPLICANT:
        _check_return_target(flow, task, target)
    task.status = TaskStatus.RETURNED
    await session.flush()
    old_round = instance.round
    instance.round += 1  # tasks of the earlier pass no longer count
    await cancel_pending(session, instance, actor=actor, now=now, reason="returned")
    await notify.cancel_reminders(session, instance)
    if target == APPLICANT:
        old = instance.status
        instance.status = InstanceStatus.RETURNED
        instance.returned_from = {"step": task.step_id, "task_id": task.id, "by": actor.user_id}
        await history.record(
            session,
            instance,
            "returned",
            actor=actor,
            at=now,
            task_id=task.id,
            step=task.step_id,
            to=APPLICANT,
            old_status=old,
            new_status=InstanceStatus.RETURNED,
            comment=task.comment,
            round=instance.round,
        )
    else:
        redo = _steps_to_redo(flow, target, task.step_id)
        instance.completed_steps = [s for s in instance.completed_steps if s not in redo]
        instance.stage_index = flow.definition.placed[target].stage_index
        await history.record(
            session,
            instance,
            "returned",
            actor=actor,
            at=now,
            task_id=task.id,
            step=task.step_id,
            to=target,
            redo=sorted(redo),
            comment=task.comment,
            old_round=old_round,
            round=instance.round,
        )
    await notify.notify(
        session,
        flow.definition,
        instance,
        recipient_id=flow.applicant.id or 0,
        kind=notify.RETURNED,
        key=f"instance:{instance.id}:returned:{old_round}",
        zh="审批被退回",
        en="Returned",
        body=task.comment or "",
        task=task,
    )
    if target != APPLICANT:
        await advance(session, flow, actor=actor, now=now, fresh=True)


# --- the applicant's actions ------------------------------------------------------------------


@history.batched
async def withdraw_instance(
    session: AsyncSession,
    instance: ApprovalInstance,
    *,
    actor: Actor,
    comment: str | None = None,
    now: datetime | None = None,
) -> ApprovalInstance:
    """撤销: the applicant takes the application back before it ends."""
    now = now or utcnow()
    comment = check_comment(comment)
    instance = await lock_instance(session, instance.id or 0)
    _require_applicant(instance, actor)
    _require_running(instance)
    flow = await load_flow(session, instance)
    old = await close(session, flow, InstanceStatus.WITHDRAWN, actor=actor, now=now)
    await history.record(
        session,
        instance,
        "withdrawn",
        actor=actor,
        at=now,
        old_status=old,
        new_status=InstanceStatus.WITHDRAWN,
        comment=comment,
    )
    await history.flush_history(session)
    await run_closing_hooks(session, instance, actor, now)
    return instance


@history.batched
async def resubmit_instance(
    session: AsyncSession,
    instance: ApprovalInstance,
    *,
    actor: Actor,
    data: dict[str, Any] | None = None,
    precheck: dict[str, Any] | None = None,
    comment: str | None = None,
    now: datetime | None = None,
) -> ApprovalInstance:
    """After a return to the applicant: resume at the step that returned it. Steps and
    parallel branches approved before stand; the deadline counts from now."""
    now = now or utcnow()
    comment = check_comment(comment)
    if data is not None:
        data = _check_data(data)
    instance = await lock_instance(session, instance.id or 0)
    _require_applicant(instance, actor)
    _require_running(instance)
    if instance.status != InstanceStatus.RETURNED:
        raise DomainError(
            ErrorCode.CONFLICT,
            "只有被退回的申请可以重新提交 / only a returned application can be resubmitted",
        )
    flow = await load_flow(session, instance)
    changed = sorted(
        k
        for k in set(instance.data) | set(data or {})
        if data is not None and instance.data.get(k) != data.get(k)
    )
    if data is not None:
        instance.data = data
    if precheck is not None:
        instance.precheck = precheck
    instance.status = InstanceStatus.RUNNING
    instance.returned_from = None
    working = bool(flow.definition.body.deadline and flow.definition.body.deadline.working_hours)
    instance.due_at = due_after(
        now, flow.definition.deadline_hours(instance.data), working_hours=working
    )
    instance.overdue = False
    await history.record(
        session,
        instance,
        "resubmitted",
        actor=actor,
        at=now,
        old_status=InstanceStatus.RETURNED,
        new_status=InstanceStatus.RUNNING,
        changed_fields=changed,
        comment=comment,
        due_at=instance.due_at.isoformat() if instance.due_at else None,
    )
    await advance(session, flow, actor=actor, now=now, fresh=True)
    return instance


# --- handing on: transfer, add signer -------------------------------------------------------


async def _own_pending_task(
    session: AsyncSession, task: ApprovalTask, actor: Actor
) -> tuple[Flow, ApprovalTask]:
    instance = await lock_instance(session, task.instance_id)
    task = await reload_task(session, task.id or 0)
    require_staff(actor)
    if task.assignee_id != actor.user_id:
        raise task_not_found()
    if task.status != TaskStatus.PENDING:
        if instance.status in CLOSED_STATUSES:
            raise closed_error(instance)
        raise DomainError(
            ErrorCode.ALREADY_DECIDED,
            "该任务已处理 / this task was already decided",
            details={"taskId": str(task.id)},
        )
    _require_running(instance)
    return await load_flow(session, instance), task


async def _check_new_assignee(
    session: AsyncSession, flow: Flow, task: ApprovalTask, user: User, field: str
) -> None:
    check_step_holder(user, flow.definition.step(task.step_id).assignee, flow.applicant, field)
    step_tasks = await live_tasks(session, flow.instance, task.step_id)
    if any(t.assignee_id == user.id and t.status == TaskStatus.PENDING for t in step_tasks):
        raise DomainError(
            ErrorCode.CONFLICT,
            "该用户已有此步骤的待办 / this user already has this step's task",
            field=field,
        )


@history.batched
async def transfer_task(
    session: AsyncSession,
    task: ApprovalTask,
    *,
    actor: Actor,
    to: User,
    comment: str | None = None,
    now: datetime | None = None,
) -> ApprovalTask:
    """转交: the task goes to another user with the same deadline. Returns the new task."""
    now = now or utcnow()
    comment = check_comment(comment)
    flow, task = await _own_pending_task(session, task, actor)
    await _check_new_assignee(session, flow, task, to, "to")
    task.status = TaskStatus.TRANSFERRED
    task.decided_at = now
    task.comment = comment
    await notify.end_task_reminders(session, flow.instance, [task.id or 0])
    new = await add_task(
        session,
        flow,
        step_id=task.step_id,
        stage_index=task.stage_index,
        branch=task.branch,
        assignee=to,
        due_at=task.due_at,
        actor=actor,
        now=now,
        kind=TaskKind(task.kind),
        transferred_from=task,
    )
    await history.record(
        session,
        flow.instance,
        "transferred",
        actor=actor,
        at=now,
        task_id=task.id,
        new_task_id=new.id,
        step=task.step_id,
        to=to.username,
        comment=comment,
    )
    return new


@history.batched
async def add_signer(
    session: AsyncSession,
    task: ApprovalTask,
    *,
    actor: Actor,
    user: User,
    comment: str | None = None,
    now: datetime | None = None,
) -> ApprovalTask:
    """加签: one more person must approve this step, by the step's deadline. Returns their task."""
    now = now or utcnow()
    comment = check_comment(comment)
    flow, task = await _own_pending_task(session, task, actor)
    await _check_new_assignee(session, flow, task, user, "user")
    new = await add_task(
        session,
        flow,
        step_id=task.step_id,
        stage_index=task.stage_index,
        branch=task.branch,
        assignee=user,
        due_at=task.due_at,
        actor=actor,
        now=now,
        kind=TaskKind.ADDED_SIGNER,
        added_by=actor,
    )
    await history.record(
        session,
        flow.instance,
        "signer_added",
        actor=actor,
        at=now,
        task_id=task.id,
        new_task_id=new.id,
        step=task.step_id,
        user=user.username,
        comment=comment,
    )
    return new


# --- visibility and reminders ------------------------------------------------------------------


@history.batched
async def carbon_copy(
    session: AsyncSession,
    instance: ApprovalInstance,
    *,
    actor: Actor,
    users: list[User],
    now: datetime | None = None,
) -> list[ApprovalCarbonCopy]:
    """抄送: let `users` read the instance, and tell them. Already copied users are skipped.

    Who may copy and who may be copied: `access.require_copier`, `access.check_copy_target`.
    """
    now = now or utcnow()
    if not users:
        raise invalid("usernames", "请选择抄送人 / choose at least one user")
    instance = await lock_instance(session, instance.id or 0)
    await require_copier(session, actor, instance)
    flow = await load_flow(session, instance)
    for user in users:
        check_copy_target(user, flow.applicant)
    existing = set(
        (
            await session.execute(
                sa.select(ApprovalCarbonCopy.user_id).where(
                    ApprovalCarbonCopy.instance_id == instance.id
                )
            )
        ).scalars()
    )
    rows = []
    for user in users:
        if user.id in existing:
            continue
        assert user.id is not None and instance.id is not None
        row = ApprovalCarbonCopy(
            instance_id=instance.id, user_id=user.id, by_id=actor.user_id, created_at=now
        )
        session.add(row)
        existing.add(user.id)
        rows.append(row)
        await session.flush()
        await history.record(session, instance, "cc", actor=actor, at=now, user=user.username)
        await notify.notify(
            session,
            flow.definition,
            instance,
            recipient_id=user.id,
            kind=notify.CARBON_COPY,
            key=f"instance:{instance.id}:cc:{user.id}",
            zh="抄送给您",
            en="Copied to you",
        )
    return rows


@history.batched
async def urge_task(
    session: AsyncSession, task: ApprovalTask, *, actor: Actor, now: datetime | None = None
) -> ApprovalTask:
    """催办: remind the assignee of a pending task; at most once per URGE_INTERVAL per task."""
    now = now or utcnow()
    instance = await lock_instance(session, task.instance_id)
    task = await reload_task(session, task.id or 0)
    if instance.applicant_id != actor.user_id and not actor.has_role(*OVERSEER_ROLES):
        raise forbidden(
            "只有申请人或医务处可以催办 / only the applicant or medical affairs may urge"
        )
    _require_running(instance)
    if task.status != TaskStatus.PENDING:
        raise DomainError(
            ErrorCode.ALREADY_DECIDED,
            "该任务已处理 / this task was already decided",
            details={"taskId": str(task.id)},
        )
    if task.urged_at is not None and now - task.urged_at < URGE_INTERVAL:
        minutes = int(URGE_INTERVAL.total_seconds() // 60)
        raise DomainError(
            ErrorCode.RATE_LIMITED,
            f"{minutes} 分钟内已催办过 / already urged within {minutes} minutes",
            details={"taskId": str(task.id)},
        )
    flow = await load_flow(session, instance)
    task.urge_count += 1
    task.urged_at = now
    await session.flush()
    await history.record(
        session,
        instance,
        "urged",
        actor=actor,
        at=now,
        task_id=task.id,
        step=task.step_id,
        count=task.urge_count,
    )
    await notify.notify(
        session,
        flow.definition,
        instance,
        recipient_id=task.assignee_id,
        kind=notify.TASK_URGED,
        key=f"task:{task.id}:urge:{task.urge_count}",
        zh="催办",
        en="Reminder",
        task=task,
    )
    return task


@history.batched
async def urge_instance(
    session: AsyncSession, instance: ApprovalInstance, *, actor: Actor, now: datetime | None = None
) -> list[ApprovalTask]:
    """催办 every pending task of the instance that was not urged lately."""
    now = now or utcnow()
    await lock_instance(session, instance.id or 0)
    pending = [t for t in await live_tasks(session, instance) if t.status == TaskStatus.PENDING]
    urged = []
    for task in pending:
        if task.urged_at is None or now - task.urged_at >= URGE_INTERVAL:
            urged.append(await urge_task(session, task, actor=actor, now=now))
    if pending and not urged:
        raise DomainError(ErrorCode.RATE_LIMITED, "近期已催办过 / already urged recently")
    return urged
