"""Who may score, issue and see penalties: the role sets, declared once (the GraphQL
permissions are built from them), and the access helpers every read goes through."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.auth import Actor
from api.errors import not_found
from api.models.penalties import Penalty, PenaltyScore
from api.models.people import Role, User

SCORERS = (Role.MEDICAL_AFFAIRS, Role.QUALITY, Role.ADMIN)
ISSUERS = (Role.MEDICAL_AFFAIRS, Role.ADMIN)
OVERSEERS = (Role.MEDICAL_AFFAIRS, Role.QUALITY, Role.ADMIN)


def can_oversee(actor: Actor) -> bool:
    return actor.has_role(*OVERSEERS)


def can_see_doctor(actor: Actor, doctor: User) -> bool:
    if can_oversee(actor) or actor.user_id == doctor.id:
        return True
    return (
        actor.has_role(Role.DEPT_HEAD)
        and actor.department_id is not None
        and actor.department_id == doctor.department_id
    )


async def access_score(
    session: AsyncSession, actor: Actor, score_id: int, *, lock: bool = False
) -> PenaltyScore:
    stmt = sa.select(PenaltyScore).where(col(PenaltyScore.id) == score_id)
    score = (await session.execute(stmt.with_for_update() if lock else stmt)).scalar_one_or_none()
    doctor = await session.get(User, score.doctor_id) if score else None
    if score is None or doctor is None or not can_see_doctor(actor, doctor):
        raise not_found("记分", "score")
    return score


async def access_penalty(
    session: AsyncSession, actor: Actor, penalty_id: int, *, lock: bool = False
) -> Penalty:
    stmt = sa.select(Penalty).where(col(Penalty.id) == penalty_id)
    penalty = (await session.execute(stmt.with_for_update() if lock else stmt)).scalar_one_or_none()
    doctor = await session.get(User, penalty.doctor_id) if penalty else None
    if penalty is None or doctor is None or not can_see_doctor(actor, doctor):
        raise not_found("奖惩", "penalty")
    return penalty


def visible_clause(
    actor: Actor, doctor_column: Any, department_column: Any
) -> sa.ColumnElement[bool]:
    if can_oversee(actor):
        return sa.true()
    mine = doctor_column == actor.user_id
    if actor.has_role(Role.DEPT_HEAD) and actor.department_id is not None:
        return sa.or_(mine, department_column == actor.department_id)
    return mine
