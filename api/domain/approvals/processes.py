"""Processes any staff member starts with a form (请假, 报销, 采购, 用印 …): the list of
published definitions and `start_process`, over the same engine as every other approval.

A definition marked `startable` is started here with its form; the others belong to an
area with its own submission (surgery pre-checks, privilege grants, score appeals) and are
refused with NOT_STARTABLE, so nothing skips that area's rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api import idempotency
from api.auth import Actor
from api.domain.approvals.actions import start_instance
from api.domain.approvals.definition import Definition
from api.domain.approvals.forms import check_form, check_references
from api.domain.approvals.registry import latest_definition, parse_stored
from api.domain.people import require_staff
from api.errors import DomainError, ErrorCode
from api.models.approvals import ApprovalDefinition, ApprovalInstance
from api.models.people import Department, User

START_SCOPE = "approval.start"


@dataclass(frozen=True)
class Published:
    """The newest published version of one process."""

    row: ApprovalDefinition
    definition: Definition

    @property
    def startable(self) -> bool:
        return bool(self.definition.body.startable)


async def published_processes(
    session: AsyncSession, *, startable_only: bool = False
) -> list[Published]:
    """Every process's newest version, by key."""
    newest = (
        sa.select(col(ApprovalDefinition.key), sa.func.max(ApprovalDefinition.version).label("v"))
        .group_by(col(ApprovalDefinition.key))
        .subquery()
    )
    rows = (
        await session.execute(
            sa.select(ApprovalDefinition)
            .join(
                newest,
                sa.and_(
                    col(ApprovalDefinition.key) == newest.c.key,
                    col(ApprovalDefinition.version) == newest.c.v,
                ),
            )
            .order_by(col(ApprovalDefinition.key))
        )
    ).scalars()
    found = [Published(row, parse_stored(row)) for row in rows]
    return [p for p in found if p.startable] if startable_only else found


async def published_process(session: AsyncSession, key: str) -> Published:
    """The newest version of one process (NOT_FOUND when it was never published)."""
    row, definition = await latest_definition(session, key)
    return Published(row, definition)


async def department_choices(session: AsyncSession) -> list[Department]:
    """What a form's department field offers: every department, by code."""
    return list(
        (await session.execute(sa.select(Department).order_by(col(Department.code)))).scalars()
    )


def not_startable(definition: Definition) -> DomainError:
    return DomainError(
        ErrorCode.NOT_STARTABLE,
        f"“{definition.body.name.zh}”须从其业务页面提交，不能直接发起 / "
        f"{definition.body.name.en or definition.key} is submitted from its own screen, not started directly",
        field="definitionKey",
    )


async def start_process(
    session: AsyncSession,
    *,
    definition_key: str,
    form: Any,
    actor: Actor,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> ApprovalInstance:
    """Check the form against the newest version's and start an instance on that version.

    The applicant is the actor. A replay with the same idempotency key returns the first
    instance; a refused form writes nothing.
    """
    require_staff(actor)
    first = await idempotency.recall(session, START_SCOPE, idempotency_key, actor=actor)
    if first is not None:
        instance = await session.get(ApprovalInstance, first["instance_id"])
        assert instance is not None
        return instance
    _, definition = await latest_definition(session, definition_key)
    if not definition.body.startable or definition.body.form is None:
        raise not_startable(definition)
    data = check_form(definition.body.form, form)
    await check_references(session, definition.body.form, data, uploader_id=actor.user_id)
    applicant = await session.get(User, actor.user_id)
    assert applicant is not None
    instance = await start_instance(
        session, definition_key=definition.key, applicant=applicant, data=data, actor=actor, now=now
    )
    await idempotency.remember(
        session, START_SCOPE, idempotency_key, {"instance_id": instance.id}, actor=actor
    )
    return instance
