"""扣分排名: confirmed scores by department and doctor, as far as the viewer may see."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.auth import Actor
from api.domain.penalties.access import visible_clause
from api.domain.penalties.states import ScoreStatus
from api.errors import invalid
from api.models.penalties import PenaltyScore
from api.models.people import Department


@dataclass
class DoctorTotal:
    doctor_id: int
    department_id: int | None
    points: float
    count: int


@dataclass
class DepartmentTotal:
    department_id: int | None
    points: float
    count: int
    doctors: list[DoctorTotal] = field(default_factory=list)


async def rankings(
    session: AsyncSession, actor: Actor, *, since: datetime, until: datetime
) -> list[DepartmentTotal]:
    """扣分排名 by department, each with its doctors; only those with confirmed scores."""
    if until <= since:
        raise invalid("until", "结束时间须晚于开始时间 / until must be after since")
    rows = (
        await session.execute(
            sa.select(
                col(PenaltyScore.department_id),
                col(PenaltyScore.doctor_id),
                sa.func.sum(col(PenaltyScore.points)),
                sa.func.count(),
            )
            .where(
                col(PenaltyScore.status) == ScoreStatus.CONFIRMED,
                col(PenaltyScore.occurred_at) >= since,
                col(PenaltyScore.occurred_at) < until,
                visible_clause(actor, col(PenaltyScore.doctor_id), col(PenaltyScore.department_id)),
            )
            .group_by(col(PenaltyScore.department_id), col(PenaltyScore.doctor_id))
        )
    ).all()
    departments: dict[int | None, DepartmentTotal] = {}
    for dept_id, doctor_id, points, count in rows:
        dept = departments.setdefault(dept_id, DepartmentTotal(dept_id, 0.0, 0))
        dept.points += float(points)
        dept.count += int(count)
        dept.doctors.append(DoctorTotal(doctor_id, dept_id, float(points), int(count)))
    ranked = sorted(departments.values(), key=lambda d: (-d.points, d.department_id or 0))
    for dept in ranked:
        dept.doctors.sort(key=lambda d: (-d.points, d.doctor_id))
    return ranked


async def department_name(session: AsyncSession, department_id: int | None) -> str:
    if department_id is None:
        return "—"
    dept = await session.get(Department, department_id)
    return dept.name if dept else "—"
