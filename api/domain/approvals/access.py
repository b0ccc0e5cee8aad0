"""Who may see or decide what, checked before an action or a read."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import record_access
from api.auth import Actor
from api.errors import forbidden, not_found
from api.models.approvals import ApprovalCarbonCopy, ApprovalInstance, ApprovalTask
from api.models.people import Role

# Roles that oversee every approval in the hospital.
OVERSEERS = (Role.MEDICAL_AFFAIRS, Role.VICE_PRESIDENT, Role.ADMIN)
# The key in an instance's data that says it concerns a patient.
PATIENT_KEY = "patient_id"


async def access_task_for_decision(
    session: AsyncSession, actor: Actor, task_id: int
) -> ApprovalTask:
    """The task, if it is the actor's: NOT_FOUND / FORBIDDEN otherwise."""
    task = await session.get(ApprovalTask, task_id)
    if task is None:
        raise not_found("审批任务", "approval task")
    if task.assignee_id != actor.user_id:
        raise forbidden("这不是您的审批任务 / this task is not yours")
    return task


async def access_task_for_urging(session: AsyncSession, actor: Actor, task_id: int) -> ApprovalTask:
    """A task on an instance the actor may see (催办 then checks who may urge)."""
    task = await session.get(ApprovalTask, task_id)
    if task is None:
        raise not_found("审批任务", "approval task")
    instance = await session.get(ApprovalInstance, task.instance_id)
    if instance is None or not await can_see_instance(session, actor, instance):
        raise forbidden("无权查看该审批 / you may not see this approval")
    return task


async def access_task(session: AsyncSession, actor: Actor, task_id: int) -> ApprovalTask:
    """A task, decided or not, for whoever may see its instance (an old link still opens)."""
    task = await session.get(ApprovalTask, task_id)
    if task is None:
        raise not_found("审批任务", "approval task")
    instance = await session.get(ApprovalInstance, task.instance_id)
    if instance is None or not await can_see_instance(session, actor, instance):
        raise forbidden("无权查看该审批 / you may not see this approval")
    return task


async def can_see_instance(session: AsyncSession, actor: Actor, instance: ApprovalInstance) -> bool:
    """The applicant, anyone who ever held a task on it, anyone copied, and overseers."""
    if actor.has_role(*OVERSEERS) or instance.applicant_id == actor.user_id:
        return True
    assigned = await session.scalar(
        sa.select(sa.literal(True))
        .where(ApprovalTask.instance_id == instance.id, ApprovalTask.assignee_id == actor.user_id)
        .limit(1)
    )
    if assigned:
        return True
    copied = await session.scalar(
        sa.select(sa.literal(True))
        .where(
            ApprovalCarbonCopy.instance_id == instance.id,
            ApprovalCarbonCopy.user_id == actor.user_id,
        )
        .limit(1)
    )
    return bool(copied)


async def access_instance(
    session: AsyncSession, actor: Actor, instance_id: int
) -> ApprovalInstance:
    instance = await session.get(ApprovalInstance, instance_id)
    if instance is None:
        raise not_found("审批单", "approval instance")
    if not await can_see_instance(session, actor, instance):
        raise forbidden("无权查看该审批 / you may not see this approval")
    return instance


async def record_instance_reads(
    session: AsyncSession,
    actor: Actor,
    instances: Sequence[ApprovalInstance],
    *,
    resource: str = "approval_instance",
) -> None:
    """An access-log row when instances that concern a patient are returned to the actor."""
    with_patient = [i for i in instances if (i.data or {}).get(PATIENT_KEY) is not None]
    if with_patient:
        await record_access(
            session,
            actor,
            resource,
            detail={
                "instance_ids": [i.id for i in with_patient],
                "patient_ids": sorted({i.data[PATIENT_KEY] for i in with_patient}, key=str),
            },
        )
