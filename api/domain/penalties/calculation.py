"""奖惩计算: a confirmed score against the rules in force when the behaviour happened.

A one-off rule makes one penalty per score at or over its threshold; a periodic rule
keeps one penalty per doctor and period, linked to every confirmed score of that period,
created when the total reaches the threshold and updated as more arrive.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.auth import Actor
from api.domain.penalties import history
from api.domain.penalties.catalog import period_bounds, rules_in_force
from api.domain.penalties.issuing import notify
from api.domain.penalties.states import PenaltyStatus, RuleKind, ScoreStatus
from api.domain.settings_of import local_day, settings_of
from api.models.base import utcnow
from api.models.penalties import Penalty, PenaltyRule, PenaltyScore, PenaltyScoreLink
from api.settings import Settings


async def _link(session: AsyncSession, penalty: Penalty, score_ids: list[int]) -> list[int]:
    existing = set(
        (
            await session.execute(
                sa.select(col(PenaltyScoreLink.score_id)).where(
                    col(PenaltyScoreLink.penalty_id) == penalty.id
                )
            )
        ).scalars()
    )
    assert penalty.id is not None
    new = [s for s in score_ids if s not in existing]
    for score_id in new:
        session.add(PenaltyScoreLink(penalty_id=penalty.id, score_id=score_id))
    await session.flush()
    return new


async def calculate(
    session: AsyncSession,
    score: PenaltyScore,
    *,
    actor: Actor,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> list[Penalty]:
    """奖惩计算 for one confirmed score, with the rules in force when it happened."""
    now = now or utcnow()
    settings = settings or settings_of(session)
    day = local_day(session, score.occurred_at, settings)
    touched: list[Penalty] = []
    for rule in await rules_in_force(session, day):
        if rule.kind == RuleKind.ONE_OFF:
            penalty = await _one_off(session, rule, score, actor=actor, now=now)
        else:
            penalty = await _periodic(session, rule, score, day, settings, actor=actor, now=now)
        if penalty is not None:
            touched.append(penalty)
    return touched


async def _one_off(
    session: AsyncSession, rule: PenaltyRule, score: PenaltyScore, *, actor: Actor, now: datetime
) -> Penalty | None:
    assert score.id is not None and rule.id is not None
    if score.points < rule.threshold:
        return None
    exists = (
        await session.execute(
            sa.select(col(Penalty.id))
            .join(PenaltyScoreLink, col(PenaltyScoreLink.penalty_id) == col(Penalty.id))
            .where(
                col(Penalty.rule_id) == rule.id,
                col(Penalty.kind) == RuleKind.ONE_OFF,
                col(PenaltyScoreLink.score_id) == score.id,
            )
        )
    ).scalar_one_or_none()
    if exists is not None:
        return None
    penalty = Penalty(
        kind=RuleKind.ONE_OFF,
        rule_id=rule.id,
        doctor_id=score.doctor_id,
        department_id=score.department_id,
        total_points=score.points,
        measure=rule.measure,
        created_at=now,
        updated_at=now,
    )
    session.add(penalty)
    await session.flush()
    await _link(session, penalty, [score.id])
    await history.record(
        session,
        penalty,
        "created",
        actor,
        now,
        score_ids=[score.id],
        rule=f"{rule.code}.v{rule.version}",
    )
    return penalty


async def _periodic(
    session: AsyncSession,
    rule: PenaltyRule,
    score: PenaltyScore,
    day: date,
    settings: Settings,
    *,
    actor: Actor,
    now: datetime,
) -> Penalty | None:
    assert rule.id is not None
    start, end = period_bounds(rule.period or "year", day)
    scores = list(
        (
            await session.execute(
                sa.select(col(PenaltyScore.id), col(PenaltyScore.points))
                .where(
                    col(PenaltyScore.doctor_id) == score.doctor_id,
                    col(PenaltyScore.status) == ScoreStatus.CONFIRMED,
                    col(PenaltyScore.occurred_at)
                    >= datetime.combine(start, datetime.min.time(), settings.tz),
                    col(PenaltyScore.occurred_at)
                    < datetime.combine(end, datetime.min.time(), settings.tz),
                )
                .order_by(col(PenaltyScore.id))
            )
        ).all()
    )
    score_ids = [s for s, _ in scores if s is not None]
    total = float(sum(p for _, p in scores))
    penalty = (
        await session.execute(
            sa.select(Penalty)
            .where(
                col(Penalty.kind) == RuleKind.PERIODIC,
                col(Penalty.rule_id) == rule.id,
                col(Penalty.doctor_id) == score.doctor_id,
                col(Penalty.period_start) == start,
            )
            .with_for_update()
        )
    ).scalar_one_or_none()
    if penalty is None:
        if total < rule.threshold:
            return None
        penalty = Penalty(
            kind=RuleKind.PERIODIC,
            rule_id=rule.id,
            doctor_id=score.doctor_id,
            department_id=score.department_id,
            period_start=start,
            period_end=end,
            total_points=total,
            measure=rule.measure,
            created_at=now,
            updated_at=now,
        )
        session.add(penalty)
        await session.flush()
        await _link(session, penalty, score_ids)
        await history.record(
            session,
            penalty,
            "created",
            actor,
            now,
            score_ids=score_ids,
            rule=f"{rule.code}.v{rule.version}",
            period=[start.isoformat(), end.isoformat()],
        )
        return penalty
    new = await _link(session, penalty, score_ids)
    if not new:
        return None
    penalty.total_points, penalty.updated_at = total, now
    await history.record(session, penalty, "scores_added", actor, now, score_ids=new)
    if penalty.status == PenaltyStatus.ISSUED:
        await notify(session, penalty, "updated", actor, now)
    return penalty
