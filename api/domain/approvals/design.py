"""Medical affairs designs processes: a trial run of a definition against sample answers,
then publishing it, each publication in the `process_definition:<key>` history.

Only processes started with a form (`startable: true`) are designed here; a key that an
area submits itself (surgery, privilege grants, appeals) stays with its area and with the
administrator's `publishApprovalDefinition`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.audit import append_event
from api.auth import Actor
from api.domain.approvals.conditions import holds
from api.domain.approvals.definition import Definition, Step, parse_definition
from api.domain.approvals.flow import resolve_assignees
from api.domain.approvals.forms import check_form, check_references
from api.domain.approvals.registry import parse_stored, publish_definition
from api.errors import DomainError, ErrorCode, forbidden, invalid
from api.models.approvals import ApprovalDefinition
from api.models.people import Role, User

DESIGNERS = (Role.MEDICAL_AFFAIRS, Role.ADMIN)


def require_designer(actor: Actor) -> None:
    if not actor.has_role(*DESIGNERS):
        raise forbidden("只有医务处可以设计流程 / only medical affairs designs processes")


async def _check_designable(session: AsyncSession, definition: Definition) -> None:
    if not definition.body.startable:
        raise invalid(
            "definition",
            "请设置 startable: true 并提供表单 / set startable: true and give the process a form",
        )
    newest = (
        await session.execute(
            sa.select(ApprovalDefinition)
            .where(col(ApprovalDefinition.key) == definition.key)
            .order_by(col(ApprovalDefinition.version).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if newest is not None and not parse_stored(newest).body.startable:
        raise DomainError(
            ErrorCode.FORBIDDEN,
            f"流程 {definition.key} 由其业务模块提交，不能在此修改 / "
            f"{definition.key} belongs to an area with its own submission",
            field="definition",
        )


@dataclass(frozen=True)
class TrialStep:
    step: Step
    stage_index: int
    branch: str | None
    assignees: list[User]


@dataclass(frozen=True)
class Trial:
    definition: Definition
    form: dict[str, Any]
    deadline_hours: float | None
    critical: bool
    steps: list[TrialStep]


async def trial_run(
    session: AsyncSession, body: dict[str, Any], form: Any, *, applicant: User, actor: Actor
) -> Trial:
    """What the definition would do with these answers from `applicant`, writing nothing:
    the checked form, the deadline, and every step that applies (as if each approves)
    with the people it would go to (none: the step would stop as NO_ASSIGNEE)."""
    require_designer(actor)
    definition = parse_definition(body)
    await _check_designable(session, definition)
    assert definition.body.form is not None
    data = check_form(definition.body.form, form)
    assert applicant.id is not None
    await check_references(session, definition.body.form, data, uploader_id=applicant.id)
    steps: list[TrialStep] = []
    for stage_index in range(len(definition.stages)):
        if not definition.stage_applies(stage_index, data):
            continue
        for branch, branch_steps in definition.branches(stage_index):
            for step in branch_steps:
                if holds(step.when, data):
                    users = await resolve_assignees(session, step.assignee, applicant)
                    steps.append(TrialStep(step, stage_index, branch, users))
    return Trial(
        definition=definition,
        form=data,
        deadline_hours=definition.deadline_hours(data),
        critical=definition.is_critical(data),
        steps=steps,
    )


async def publish_process_definition(
    session: AsyncSession, body: dict[str, Any], *, actor: Actor
) -> ApprovalDefinition:
    """Publish a new version of a process started with a form; running instances keep theirs."""
    require_designer(actor)
    definition = parse_definition(body)
    await _check_designable(session, definition)
    existed = await session.scalar(
        sa.select(col(ApprovalDefinition.id)).where(
            col(ApprovalDefinition.key) == definition.key,
            col(ApprovalDefinition.version) == definition.version,
        )
    )
    row = await publish_definition(session, body)
    if existed is None:
        await append_event(
            session,
            f"process_definition:{definition.key}",
            "published",
            actor=actor,
            data={"key": definition.key, "version": definition.version, "definition_id": row.id},
        )
    return row
