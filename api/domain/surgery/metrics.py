"""The figures the hospital reports on surgery approval (seed 000: 24 小时内审批完成率 …).

Over surgery applications submitted in [since, until):
- decided: approved or rejected (withdrawn ones are left out of every rate; a blocked
  one counts as submitted but not decided);
- completedWithin24hRate: decided within 24 hours of submission / submitted;
- emergencyWithin2hRate: the same for emergencies, within 2 hours;
- medianHoursToDecision: the median of submission → decision, decided ones only;
- overdueCount: marked overdue by the escalation sweep, decided after the deadline, or
  still running past it.
Computed in one SQL statement on PostgreSQL; SQLite (embedded) gets the same numbers
from the rows.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor
from api.errors import forbidden, invalid
from api.models.approvals import ApprovalInstance, InstanceStatus
from api.models.audit import AuditEvent
from api.models.people import Role
from api.models.surgery import SurgeryApplication

VIEWERS = (Role.MEDICAL_AFFAIRS, Role.VICE_PRESIDENT, Role.ADMIN)
DECIDED = (InstanceStatus.APPROVED.value, InstanceStatus.REJECTED.value)


@dataclass
class ApprovalMetrics:
    submitted: int
    decided: int
    completed_within_24h: int
    emergency_submitted: int
    emergency_within_2h: int
    overdue_count: int
    median_hours_to_decision: float | None

    @property
    def completed_within_24h_rate(self) -> float | None:
        return self.completed_within_24h / self.submitted if self.submitted else None

    @property
    def emergency_within_2h_rate(self) -> float | None:
        return (
            self.emergency_within_2h / self.emergency_submitted
            if self.emergency_submitted
            else None
        )


async def approval_metrics(
    session: AsyncSession, actor: Actor, *, since: datetime, until: datetime, now: datetime
) -> ApprovalMetrics:
    if not actor.has_role(*VIEWERS):
        raise forbidden(
            "仅医务处与院领导可查看审批统计 / only medical affairs and hospital leaders see approval metrics"
        )
    if until <= since:
        raise invalid("until", "统计截止时间应晚于起始时间 / until must be after since")
    i, a = ApprovalInstance, SurgeryApplication
    window = sa.and_(
        i.kind == "surgery",
        i.status != InstanceStatus.WITHDRAWN.value,
        i.created_at >= since,
        i.created_at < until,
    )
    joined = sa.select().select_from(i).join(a, a.instance_id == i.id).where(window)
    if session.bind.dialect.name == "postgresql":
        return await _metrics_sql(session, joined, now)
    return await _metrics_rows(session, joined, now)


async def _metrics_sql(session: AsyncSession, joined: sa.Select, now: datetime) -> ApprovalMetrics:  # type: ignore[type-arg]
    i, a = ApprovalInstance, SurgeryApplication
    decided = i.status.in_(DECIDED)
    hours = sa.extract("epoch", i.closed_at - i.created_at) / 3600.0
    overdue = sa.or_(
        i.overdue.is_(True),
        sa.and_(i.closed_at.is_not(None), i.due_at.is_not(None), i.closed_at > i.due_at),
        sa.and_(i.closed_at.is_(None), i.due_at.is_not(None), i.due_at < now),
    )

    def count(cond: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
        return sa.func.count().filter(cond)

    stmt = joined.add_columns(
        sa.func.count(),
        count(decided),
        count(sa.and_(decided, hours <= 24)),
        count(a.emergency.is_(True)),
        count(sa.and_(a.emergency.is_(True), decided, hours <= 2)),
        count(overdue),
        sa.func.percentile_cont(0.5).within_group(hours).filter(decided),
    )
    row = (await session.execute(stmt)).one()
    return ApprovalMetrics(
        submitted=row[0],
        decided=row[1],
        completed_within_24h=row[2],
        emergency_submitted=row[3],
        emergency_within_2h=row[4],
        overdue_count=row[5],
        median_hours_to_decision=float(row[6]) if row[6] is not None else None,
    )


async def _metrics_rows(session: AsyncSession, joined: sa.Select, now: datetime) -> ApprovalMetrics:  # type: ignore[type-arg]
    i, a = ApprovalInstance, SurgeryApplication
    rows = (
        await session.execute(
            joined.add_columns(
                i.status, i.created_at, i.closed_at, i.due_at, i.overdue, a.emergency
            )
        )
    ).all()
    result = ApprovalMetrics(0, 0, 0, 0, 0, 0, None)
    hours_list = []
    for status, created, closed, due, overdue, emergency in rows:
        result.submitted += 1
        result.emergency_submitted += bool(emergency)
        hours = (closed - created).total_seconds() / 3600 if status in DECIDED and closed else None
        if hours is not None:
            result.decided += 1
            hours_list.append(hours)
            result.completed_within_24h += hours <= 24
            result.emergency_within_2h += bool(emergency) and hours <= 2
        result.overdue_count += bool(
            overdue or (closed and due and closed > due) or (closed is None and due and due < now)
        )
    result.median_hours_to_decision = statistics.median(hours_list) if hours_list else None
    return result


async def over_authority_records(
    session: AsyncSession, actor: Actor, *, since: datetime, until: datetime, limit: int = 500
) -> list[AuditEvent]:
    """越权行为: every over-authority approval recorded in the period, newest first."""
    if not actor.has_role(*VIEWERS):
        raise forbidden(
            "仅医务处与院领导可查看越权记录 / only medical affairs and hospital leaders see over-authority records"
        )
    if until <= since:
        raise invalid("until", "统计截止时间应晚于起始时间 / until must be after since")
    stmt = (
        sa.select(AuditEvent)
        .where(AuditEvent.action == "over_authority", AuditEvent.at >= since, AuditEvent.at < until)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(min(limit, 2000))
    )
    return list((await session.execute(stmt)).scalars())
