"""Who may see, decide, be handed or be copied what, checked before an action or a read.

The rules, in one place (GraphQL, the DingTalk / WeCom cards, and any sync mutator or
other adapter of approvals come here; the actions call the same checks):

- Only staff (`people.user_is_staff`: active, a staff role, no patient role) ever hold,
  sign or copy an approval. A patient is never an assignee, a signer or a copy target.
- Deciding a task: its assignee only, and only while they are staff.
- Handing a step on (转交 transfer, 加签 add signer): to staff other than the applicant
  who are entitled to the step — the step's own rule names them (its role, the
  applicant's department head, the named user), or they work in the application's
  department (the applicant's), or they oversee approvals (medical affairs,
  vice-president, admin).
- Copying (抄送): the applicant, anyone who holds or held a task on the instance, and the
  overseers may copy; a user who was only copied may read but not copy onward. A copy
  goes to staff who may see the application's department: its members and the overseers.
- Seeing an instance: the applicant, its assignees, those copied, the overseers.
- "Not yours" answers exactly like "not there" (NOT_FOUND), so ids cannot be probed.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import record_access
from api.auth import Actor
from api.domain.approvals.definition import AssigneeRule
from api.domain.people import actor_is_staff, require_staff, user_is_staff
from api.errors import DomainError, forbidden, invalid, not_found
from api.models.approvals import ApprovalCarbonCopy, ApprovalInstance, ApprovalTask
from api.models.people import Role, User

# Roles that oversee every approval in the hospital.
OVERSEERS = (Role.MEDICAL_AFFAIRS, Role.VICE_PRESIDENT, Role.ADMIN)
# The key in an instance's data that says it concerns a patient.
PATIENT_KEY = "patient_id"


async def access_task_for_decision(
    session: AsyncSession, actor: Actor, task_id: int
) -> ApprovalTask:
    """The task, if it is the actor's: NOT_FOUND when it is missing or someone else's alike;
    FORBIDDEN (whatever the id) for an actor who is not staff."""
    require_staff(actor, "只有医院职工可以审批 / only hospital staff may decide approvals")
    task = await session.get(ApprovalTask, task_id)
    if task is None or task.assignee_id != actor.user_id:
        raise task_not_found()
    return task


def task_not_found() -> DomainError:
    """A task that is not there, or not the actor's: the same answer."""
    return not_found("审批任务", "approval task")


def instance_not_found() -> DomainError:
    return not_found("审批单", "approval instance")


async def access_task_for_urging(session: AsyncSession, actor: Actor, task_id: int) -> ApprovalTask:
    """A task on an instance the actor may see (催办 then checks who may urge)."""
    task = await session.get(ApprovalTask, task_id)
    if task is None:
        raise task_not_found()
    instance = await session.get(ApprovalInstance, task.instance_id)
    if instance is None or not await can_see_instance(session, actor, instance):
        raise task_not_found()
    return task


async def access_task(session: AsyncSession, actor: Actor, task_id: int) -> ApprovalTask:
    """A task, decided or not, for whoever may see its instance (an old link still opens)."""
    task = await session.get(ApprovalTask, task_id)
    instance = await session.get(ApprovalInstance, task.instance_id) if task else None
    if task is None or instance is None or not await can_see_instance(session, actor, instance):
        raise task_not_found()  # "not yours" answers like "not there"
    return task


async def can_see_instance(session: AsyncSession, actor: Actor, instance: ApprovalInstance) -> bool:
    """The applicant, anyone who ever held a task on it, anyone copied, and overseers —
    staff only: a patient sees no approval, even one a task or copy reached before."""
    if not actor_is_staff(actor):
        return False
    if actor.has_role(*OVERSEERS) or instance.applicant_id == actor.user_id:
        return True
    if await has_held_task(session, actor.user_id, instance):
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


async def has_held_task(session: AsyncSession, user_id: int, instance: ApprovalInstance) -> bool:
    assigned = await session.scalar(
        sa.select(sa.literal(True))
        .where(ApprovalTask.instance_id == instance.id, ApprovalTask.assignee_id == user_id)
        .limit(1)
    )
    return bool(assigned)


async def access_instance(
    session: AsyncSession, actor: Actor, instance_id: int
) -> ApprovalInstance:
    instance = await session.get(ApprovalInstance, instance_id)
    if instance is None or not await can_see_instance(session, actor, instance):
        raise instance_not_found()
    return instance


# --- handing on and copying -------------------------------------------------------------


def _oversees(user: User) -> bool:
    return bool(set(user.roles or []) & {str(r) for r in OVERSEERS})


def sees_department(user: User, department_id: int | None) -> bool:
    """Staff who may see an application of `department_id`: its members and the overseers."""
    if not user_is_staff(user):
        return False
    return _oversees(user) or (department_id is not None and user.department_id == department_id)


def named_by_rule(user: User, rule: AssigneeRule, applicant: User) -> bool:
    """Whether a step's assignee rule names `user` (who it would pick, or could have)."""
    roles = set(user.roles or [])
    if rule.user is not None:
        return user.username == rule.user
    if rule.department_head is not None:
        return Role.DEPT_HEAD.value in roles and user.department_id == applicant.department_id
    assert rule.role is not None
    if rule.scope == "applicant_department" and user.department_id != applicant.department_id:
        return False
    return str(rule.role) in roles


def check_step_holder(user: User, rule: AssigneeRule, applicant: User, field: str) -> None:
    """VALIDATION unless `user` may be handed a step (转交, 加签) of `applicant`'s application."""
    if not user_is_staff(user) or user.id == applicant.id:
        raise invalid(field, "不能指定该用户 / this user cannot take the task")
    if not (named_by_rule(user, rule, applicant) or sees_department(user, applicant.department_id)):
        raise invalid(
            field,
            "该用户无权办理此审批步骤 / this user is not entitled to this approval step",
        )


def check_copy_target(user: User, applicant: User, field: str = "usernames") -> None:
    if not sees_department(user, applicant.department_id):
        raise invalid(
            field,
            f"不能抄送给该用户 / this user may not be copied: {user.username}",
        )


async def may_copy(session: AsyncSession, actor: Actor, instance: ApprovalInstance) -> bool:
    """The applicant, anyone who holds or held a task on it, and the overseers."""
    if not actor_is_staff(actor):
        return False
    if actor.has_role(*OVERSEERS) or instance.applicant_id == actor.user_id:
        return True
    return await has_held_task(session, actor.user_id, instance)


async def require_copier(session: AsyncSession, actor: Actor, instance: ApprovalInstance) -> None:
    if not await can_see_instance(session, actor, instance):
        raise instance_not_found()
    if not await may_copy(session, actor, instance):
        raise forbidden(
            "只有申请人、审批人或医务处可以抄送 / only the applicant, an approver or medical affairs may copy"
        )


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
