"""Reads: a user's tasks and applications, an instance's tasks."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor
from api.domain.people import actor_is_staff
from api.models.approvals import ApprovalInstance, ApprovalTask, TaskStatus


async def my_tasks(
    session: AsyncSession, actor: Actor, *, pending_only: bool = True, limit: int = 200
) -> list[ApprovalTask]:
    """The actor's tasks, most urgent first (none for a patient: only staff hold tasks)."""
    if not actor_is_staff(actor):
        return []
    stmt = sa.select(ApprovalTask).where(ApprovalTask.assignee_id == actor.user_id)
    if pending_only:
        stmt = stmt.where(ApprovalTask.status == TaskStatus.PENDING).order_by(
            ApprovalTask.due_at.asc().nulls_last(), ApprovalTask.id
        )
    else:
        stmt = stmt.order_by(ApprovalTask.id.desc())
    return list((await session.execute(stmt.limit(limit))).scalars())


async def my_applications(
    session: AsyncSession, actor: Actor, *, kind: str | None = None, limit: int = 200
) -> list[ApprovalInstance]:
    stmt = sa.select(ApprovalInstance).where(ApprovalInstance.applicant_id == actor.user_id)
    if kind:
        stmt = stmt.where(ApprovalInstance.kind == kind)
    return list(
        (await session.execute(stmt.order_by(ApprovalInstance.id.desc()).limit(limit))).scalars()
    )


async def instance_tasks(session: AsyncSession, instance_id: int) -> list[ApprovalTask]:
    stmt = (
        sa.select(ApprovalTask)
        .where(ApprovalTask.instance_id == instance_id)
        .order_by(ApprovalTask.id)
    )
    return list((await session.execute(stmt)).scalars())


async def pending_tasks(session: AsyncSession, instance_id: int) -> list[ApprovalTask]:
    stmt = (
        sa.select(ApprovalTask)
        .where(ApprovalTask.instance_id == instance_id, ApprovalTask.status == TaskStatus.PENDING)
        .order_by(ApprovalTask.id)
    )
    return list((await session.execute(stmt)).scalars())
