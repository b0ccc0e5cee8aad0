"""不良执业: negative list, scores, appeals, penalties, rankings."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
import strawberry
from sqlalchemy.ext.asyncio import AsyncSession

from api import idempotency
from api.domain import penalties
from api.domain.people import user_by_username
from api.graphql.context import Info
from api.graphql.penalties.types import (
    ChartSeries,
    DepartmentPoints,
    DoctorPoints,
    Penalty,
    PenaltyItem,
    PenaltyRanking,
    PenaltyRule,
    PenaltyScore,
    PenaltyScoreInput,
)
from api.graphql.people.types import UserRef
from api.graphql.permissions import HasRole, IsStaff
from api.graphql.scalars import parse_id
from api.models.penalties import Penalty as PenaltyRow
from api.models.penalties import PenaltyItem as ItemRow
from api.models.penalties import PenaltyRule as RuleRow
from api.models.penalties import PenaltyScore as ScoreRow
from api.models.penalties import PenaltyScoreLink
from api.models.people import User

# Who may score and issue is the domain's rule; the permissions only say it first.
Scorers = HasRole(*penalties.SCORERS)
Issuers = HasRole(*penalties.ISSUERS)


async def _user_ref(session: AsyncSession, user_id: int) -> UserRef:
    user = await session.get(User, user_id)
    assert user is not None
    return UserRef.from_row(user)


async def _score(session: AsyncSession, row: ScoreRow) -> PenaltyScore:
    item = await session.get(ItemRow, row.item_id)
    assert item is not None
    return PenaltyScore.build(
        row,
        await _user_ref(session, row.doctor_id),
        await penalties.department_name(session, row.department_id),
        item,
    )


async def _penalty(session: AsyncSession, row: PenaltyRow) -> Penalty:
    rule = await session.get(RuleRow, row.rule_id)
    assert rule is not None
    links = list(
        (
            await session.execute(
                sa.select(PenaltyScoreLink.score_id)
                .where(PenaltyScoreLink.penalty_id == row.id)
                .order_by(PenaltyScoreLink.score_id)
            )
        ).scalars()
    )
    return Penalty.build(
        row,
        rule,
        await _user_ref(session, row.doctor_id),
        await penalties.department_name(session, row.department_id),
        links,
    )


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[IsStaff],
        description="负面清单: the negative list (in force on `at`, or every version).",
    )
    async def penalty_items(self, info: Info, at: date | None = None) -> list[PenaltyItem]:
        async with info.context.read() as session:
            return [PenaltyItem.from_row(r) for r in await penalties.negative_list(session, at=at)]

    @strawberry.field(
        permission_classes=[IsStaff], description="奖惩规则 in force on `at` (default today)."
    )
    async def penalty_rules(self, info: Info, at: date | None = None) -> list[PenaltyRule]:
        day = at or datetime.now(info.context.settings.tz).date()
        async with info.context.read() as session:
            return [PenaltyRule.from_row(r) for r in await penalties.rules_in_force(session, day)]

    @strawberry.field(
        permission_classes=[IsStaff],
        description="记分 I may see (mine; my department as its head; all for functional departments).",
    )
    async def penalty_scores(
        self, info: Info, status: str | None = None, doctor_username: str | None = None
    ) -> list[PenaltyScore]:
        actor = info.context.require_actor()
        async with info.context.read() as session:
            stmt = sa.select(ScoreRow).where(
                penalties.visible_clause(actor, ScoreRow.doctor_id, ScoreRow.department_id)
            )
            if status:
                stmt = stmt.where(ScoreRow.status == status)
            if doctor_username:
                stmt = stmt.where(
                    ScoreRow.doctor_id == (await user_by_username(session, doctor_username)).id
                )
            rows = (
                await session.execute(stmt.order_by(ScoreRow.occurred_at.desc()).limit(500))
            ).scalars()
            return [await _score(session, r) for r in rows]

    @strawberry.field(permission_classes=[IsStaff], description="奖惩 I may see, newest first.")
    async def penalties(self, info: Info, status: str | None = None) -> list[Penalty]:
        actor = info.context.require_actor()
        async with info.context.read() as session:
            stmt = sa.select(PenaltyRow).where(
                penalties.visible_clause(actor, PenaltyRow.doctor_id, PenaltyRow.department_id)
            )
            if status:
                stmt = stmt.where(PenaltyRow.status == status)
            rows = (await session.execute(stmt.order_by(PenaltyRow.id.desc()).limit(500))).scalars()
            return [await _penalty(session, r) for r in rows]

    @strawberry.field(permission_classes=[IsStaff], description="One penalty with its scores.")
    async def penalty(self, info: Info, id: strawberry.ID) -> Penalty:
        actor = info.context.require_actor()
        async with info.context.read() as session:
            return await _penalty(
                session, await penalties.access_penalty(session, actor, parse_id(id, "id"))
            )

    @strawberry.field(
        permission_classes=[IsStaff],
        description="科室医生扣分排名 and chart series for confirmed scores in [since, until).",
    )
    async def penalty_ranking(self, info: Info, since: datetime, until: datetime) -> PenaltyRanking:
        actor = info.context.require_actor()
        async with info.context.read() as session:
            ranked = await penalties.rankings(session, actor, since=since, until=until)
            departments: list[DepartmentPoints] = []
            everyone: list[DoctorPoints] = []
            for i, dept in enumerate(ranked, start=1):
                doctors = [
                    DoctorPoints(
                        doctor=await _user_ref(session, d.doctor_id),
                        points=d.points,
                        count=d.count,
                        rank=j,
                    )
                    for j, d in enumerate(dept.doctors, start=1)
                ]
                everyone.extend(doctors)
                departments.append(
                    DepartmentPoints(
                        department_id=strawberry.ID(str(dept.department_id))
                        if dept.department_id
                        else None,
                        department_name=await penalties.department_name(
                            session, dept.department_id
                        ),
                        points=dept.points,
                        count=dept.count,
                        rank=i,
                        doctors=doctors,
                    )
                )
        everyone.sort(key=lambda d: (-d.points, d.doctor.username))
        overall = [
            DoctorPoints(doctor=d.doctor, points=d.points, count=d.count, rank=i)
            for i, d in enumerate(everyone, start=1)
        ]
        return PenaltyRanking(
            departments=departments,
            doctors=overall,
            department_categories=[d.department_name for d in departments],
            department_series=[
                ChartSeries(name="扣分 / points", data=[d.points for d in departments])
            ],
            doctor_categories=[d.doctor.display_name for d in overall],
            doctor_series=[ChartSeries(name="扣分 / points", data=[d.points for d in overall])],
        )


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[Scorers],
        description="记分: record a score against a doctor; the doctor is notified.",
    )
    async def record_penalty_score(self, info: Info, input: PenaltyScoreInput) -> PenaltyScore:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            slot = await idempotency.once(
                session, "penalty-score", input.idempotency_key, actor=actor
            )
            if slot.first is not None:
                return await _score(
                    session, await penalties.access_score(session, actor, int(slot.first["id"]))
                )
            doctor = await user_by_username(session, input.doctor_username)
            score = await penalties.record_score(
                session,
                doctor=doctor,
                item_code=input.item_code,
                occurred_at=input.occurred_at,
                description=input.description,
                recorder_unit=input.recorder_unit,
                actor=actor,
                settings=info.context.settings,
            )
            await slot.done({"id": score.id})
            return await _score(session, score)

    @strawberry.mutation(
        permission_classes=[Scorers],
        description="确认记分: confirm a score; runs the penalty calculation.",
    )
    async def confirm_penalty_score(self, info: Info, id: strawberry.ID) -> PenaltyScore:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            score = await penalties.access_score(session, actor, parse_id(id, "id"), lock=True)
            await penalties.confirm_score(
                session, score, actor=actor, settings=info.context.settings
            )
            return await _score(session, score)

    @strawberry.mutation(
        permission_classes=[IsStaff],
        description="申诉: appeal my own score; medical affairs review it (复核).",
    )
    async def appeal_penalty_score(
        self, info: Info, id: strawberry.ID, reason: str
    ) -> PenaltyScore:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            score = await penalties.access_score(session, actor, parse_id(id, "id"), lock=True)
            await penalties.appeal_score(session, score, actor=actor, reason=reason)
            return await _score(session, score)

    @strawberry.mutation(
        permission_classes=[Issuers],
        description="下发: issue a pending penalty to the doctor (and the department chief).",
    )
    async def issue_penalty(self, info: Info, id: strawberry.ID) -> Penalty:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            penalty = await penalties.access_penalty(session, actor, parse_id(id, "id"), lock=True)
            await penalties.issue_penalty(session, penalty, actor=actor)
            return await _penalty(session, penalty)

    @strawberry.mutation(
        permission_classes=[Issuers],
        description="结束: end a penalty (served, or not issued for a special reason).",
    )
    async def end_penalty(self, info: Info, id: strawberry.ID, reason: str) -> Penalty:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            penalty = await penalties.access_penalty(session, actor, parse_id(id, "id"), lock=True)
            await penalties.end_penalty(session, penalty, actor=actor, reason=reason)
            return await _penalty(session, penalty)
