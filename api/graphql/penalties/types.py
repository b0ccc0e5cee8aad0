from __future__ import annotations

from datetime import date, datetime

import strawberry

from api.graphql.people.types import UserRef
from api.graphql.rows import from_row
from api.models.penalties import Penalty as PenaltyRow
from api.models.penalties import PenaltyItem as ItemRow
from api.models.penalties import PenaltyRule as RuleRow
from api.models.penalties import PenaltyScore as ScoreRow


@strawberry.type
class PenaltyItem:
    id: strawberry.ID
    code: str
    version: int
    category: str
    name: str
    points: float
    effective_from: date
    effective_to: date | None

    @classmethod
    def from_row(cls, r: ItemRow) -> PenaltyItem:
        return from_row(cls, r)


@strawberry.type
class PenaltyRule:
    id: strawberry.ID
    code: str
    version: int
    name: str
    kind: str
    threshold: float
    period: str | None
    measure: str
    suspend_scope: str | None
    suspend_days: int | None
    effective_from: date
    effective_to: date | None

    @classmethod
    def from_row(cls, r: RuleRow) -> PenaltyRule:
        suspend = (r.action or {}).get("suspend") or {}
        return cls(
            id=strawberry.ID(str(r.id)),
            code=r.code,
            version=r.version,
            name=r.name,
            kind=r.kind,
            threshold=r.threshold,
            period=r.period,
            measure=r.measure,
            suspend_scope=suspend.get("scope"),
            suspend_days=suspend.get("days"),
            effective_from=r.effective_from,
            effective_to=r.effective_to,
        )


@strawberry.type
class PenaltyScore:
    id: strawberry.ID
    doctor: UserRef
    department_name: str
    item: PenaltyItem
    points: float
    occurred_at: datetime
    description: str
    recorder_unit: str
    status: str
    appeal_reason: str | None
    appeal_instance_id: strawberry.ID | None
    created_at: datetime
    confirmed_at: datetime | None

    @classmethod
    def build(
        cls, r: ScoreRow, doctor: UserRef, department_name: str, item: ItemRow
    ) -> PenaltyScore:
        return cls(
            id=strawberry.ID(str(r.id)),
            doctor=doctor,
            department_name=department_name,
            item=PenaltyItem.from_row(item),
            points=r.points,
            occurred_at=r.occurred_at,
            description=r.description,
            recorder_unit=r.recorder_unit,
            status=r.status,
            appeal_reason=r.appeal_reason,
            appeal_instance_id=strawberry.ID(str(r.appeal_instance_id))
            if r.appeal_instance_id
            else None,
            created_at=r.created_at,
            confirmed_at=r.confirmed_at,
        )


@strawberry.type
class Penalty:
    id: strawberry.ID
    kind: str
    status: str
    status_zh: str
    rule: PenaltyRule
    doctor: UserRef
    department_name: str
    period_start: date | None
    period_end: date | None
    total_points: float
    measure: str
    score_ids: list[strawberry.ID]
    issued_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    suspension_id: strawberry.ID | None

    @classmethod
    def build(
        cls,
        r: PenaltyRow,
        rule: RuleRow,
        doctor: UserRef,
        department_name: str,
        score_ids: list[int],
    ) -> Penalty:
        from api.domain.penalties import STATUS_ZH

        return cls(
            id=strawberry.ID(str(r.id)),
            kind=r.kind,
            status=r.status,
            status_zh=STATUS_ZH[r.status],
            rule=PenaltyRule.from_row(rule),
            doctor=doctor,
            department_name=department_name,
            period_start=r.period_start,
            period_end=r.period_end,
            total_points=r.total_points,
            measure=r.measure,
            score_ids=[strawberry.ID(str(i)) for i in score_ids],
            issued_at=r.issued_at,
            ended_at=r.ended_at,
            end_reason=r.end_reason,
            suspension_id=strawberry.ID(str(r.suspension_id)) if r.suspension_id else None,
        )


@strawberry.input
class PenaltyScoreInput:
    doctor_username: str
    item_code: str
    occurred_at: datetime
    description: str = ""
    recorder_unit: str = "医务处"
    idempotency_key: str | None = None


@strawberry.type
class DoctorPoints:
    doctor: UserRef
    points: float
    count: int
    rank: int


@strawberry.type
class DepartmentPoints:
    department_id: strawberry.ID | None
    department_name: str
    points: float
    count: int
    rank: int
    doctors: list[DoctorPoints]


@strawberry.type
class ChartSeries:
    name: str
    data: list[float]


@strawberry.type
class PenaltyRanking:
    """Rankings plus chart-ready series (ECharts: categories on the x axis, one series)."""

    departments: list[DepartmentPoints]
    doctors: list[DoctorPoints]
    department_categories: list[str]
    department_series: list[ChartSeries]
    doctor_categories: list[str]
    doctor_series: list[ChartSeries]
