"""Deadlines that passed: mark overdue and tell the assignee's superior, once.

The state lives in the database (`due_at`, `overdue`, `escalated_at`), so a worker restart
or an emptied Redis loses nothing: the next sweep finds what is due. The partial indexes
on due rows keep a sweep from reading decided tasks or closed instances.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import SYSTEM_ACTOR
from api.domain.approvals import history, notify
from api.domain.approvals.flow import load_flow
from api.domain.people import superior_of
from api.models.approvals import ApprovalInstance, ApprovalTask, InstanceStatus, TaskStatus
from api.models.people import User


async def _lock_if_free(session: AsyncSession, instance_id: int) -> ApprovalInstance | None:
    """The instance's row lock, unless a decision holds it (then the next sweep gets it)."""
    stmt = (
        sa.select(ApprovalInstance)
        .where(ApprovalInstance.id == instance_id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


@history.batched
async def escalate_overdue(session: AsyncSession, *, now: datetime, batch: int = 500) -> int:
    """Escalate pending tasks whose deadline passed; mark instances past their deadline.

    Returns the number of tasks escalated. Safe to run in several workers at once.
    """
    due_tasks = (
        await session.execute(
            sa.select(ApprovalTask.id, ApprovalTask.instance_id)
            .where(
                ApprovalTask.status == TaskStatus.PENDING,
                ApprovalTask.escalated_at.is_(None),
                ApprovalTask.due_at <= now,
            )
            .order_by(ApprovalTask.due_at)
            .limit(batch)
        )
    ).all()
    escalated = 0
    for task_id, instance_id in due_tasks:
        instance = await _lock_if_free(session, instance_id)
        if instance is None:
            continue
        task = (
            await session.execute(
                sa.select(ApprovalTask)
                .where(ApprovalTask.id == task_id)
                .execution_options(populate_existing=True)
            )
        ).scalar_one()
        if task.status != TaskStatus.PENDING or task.escalated_at is not None:
            continue  # decided or escalated meanwhile
        flow = await load_flow(session, instance)
        assignee = await session.get(User, task.assignee_id)
        assert assignee is not None
        superior = await superior_of(session, assignee)
        task.overdue = True
        task.escalated_at = now
        await session.flush()
        await history.record(
            session,
            instance,
            "overdue",
            actor=SYSTEM_ACTOR,
            at=now,
            task_id=task.id,
            step=task.step_id,
            due_at=task.due_at.isoformat() if task.due_at else None,
        )
        step_name = flow.definition.step(task.step_id).name
        await notify.notify(
            session,
            flow.definition,
            instance,
            recipient_id=task.assignee_id,
            kind=notify.TASK_OVERDUE,
            key=f"task:{task.id}:overdue",
            zh=f"审批已超时（{step_name.zh}）",
            en=f"Overdue ({step_name.en or task.step_id})",
            task=task,
        )
        if superior is not None and superior.id is not None:
            await history.record(
                session,
                instance,
                "escalated",
                actor=SYSTEM_ACTOR,
                at=now,
                task_id=task.id,
                to=superior.username,
            )
            await notify.notify(
                session,
                flow.definition,
                instance,
                recipient_id=superior.id,
                kind=notify.TASK_OVERDUE,
                key=f"task:{task.id}:escalated",
                zh=f"下属审批超时（{assignee.display_name}，{step_name.zh}）",
                en=f"Overdue at {assignee.username} ({step_name.en or task.step_id})",
                task=task,
            )
        escalated += 1

    due_instances = (
        (
            await session.execute(
                sa.select(ApprovalInstance.id)
                .where(
                    ApprovalInstance.status == InstanceStatus.RUNNING,
                    ApprovalInstance.overdue.is_(False),
                    ApprovalInstance.due_at <= now,
                )
                .limit(batch)
            )
        )
        .scalars()
        .all()
    )
    for instance_id in due_instances:
        instance = await _lock_if_free(session, instance_id)
        if instance is None or instance.status != InstanceStatus.RUNNING or instance.overdue:
            continue
        instance.overdue = True
        await history.record(
            session,
            instance,
            "overdue",
            actor=SYSTEM_ACTOR,
            at=now,
            due_at=instance.due_at.isoformat() if instance.due_at else None,
        )
    await session.flush()
    return escalated
