"""Bad-practice scoring (不良执业记分) and penalties (奖惩).

The negative list and the penalty rules are versioned with effective dates: a score is
judged by the list and rules in force when the behaviour happened, not when it was
entered. A one-off penalty links to its one score; a periodic penalty links to every
confirmed score of the doctor within its period and grows as scores arrive.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from api.models.base import json_field, ts_field


class PenaltyItem(SQLModel, table=True):
    """One entry of the negative list (负面清单), in one version."""

    __tablename__ = "penalty_item"
    __table_args__ = (sa.UniqueConstraint("code", "version", name="uq_penalty_item_code_version"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40, index=True)
    version: int = Field(default=1)
    category: str = Field(default="", max_length=60)  # 核心制度, 处方管理, 院感 …
    name: str = Field(max_length=300)
    points: float = Field()
    effective_from: date = Field()
    effective_to: date | None = Field(default=None)  # exclusive; None: still in force
    created_at: datetime = ts_field(default_now=True)


class PenaltyRule(SQLModel, table=True):
    """一次性扣分 (one_off: a single score of at least `threshold`) or 周期性扣分
    (periodic: points within a calendar `period` reaching `threshold`)."""

    __tablename__ = "penalty_rule"
    __table_args__ = (sa.UniqueConstraint("code", "version", name="uq_penalty_rule_code_version"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40, index=True)
    version: int = Field(default=1)
    name: str = Field(max_length=200)
    kind: str = Field(max_length=10)  # one_off | periodic
    threshold: float = Field()
    period: str | None = Field(default=None, max_length=10)  # year | quarter | month (periodic)
    measure: str = Field(default="", max_length=300)  # 通报批评, 暂停手术权限三个月 …
    # {"suspend": {"scope": "surgery", "days": 90}}: suspend privileges when issued.
    action: dict[str, Any] = json_field()
    effective_from: date = Field()
    effective_to: date | None = Field(default=None)
    created_at: datetime = ts_field(default_now=True)


class PenaltyScore(SQLModel, table=True):
    """A score recorded by a functional department against a doctor (记分)."""

    __tablename__ = "penalty_score"
    __table_args__ = (sa.Index("ix_penalty_score_doctor_occurred", "doctor_id", "occurred_at"),)

    id: int | None = Field(default=None, primary_key=True)
    doctor_id: int = Field(foreign_key="user.id")
    department_id: int | None = Field(default=None, foreign_key="department.id", index=True)
    item_id: int = Field(foreign_key="penalty_item.id")
    points: float = Field()
    occurred_at: datetime = ts_field()
    description: str = Field(default="", max_length=1000)
    recorded_by_id: int = Field(foreign_key="user.id")
    recorder_unit: str = Field(default="", max_length=60)  # 医务处, 药剂科, 感染办 …
    # notified (记分通知已下发) → appealing (申诉中) → confirmed | revoked (复核撤销)
    status: str = Field(default="notified", max_length=12, index=True)
    appeal_reason: str | None = Field(default=None, max_length=1000)
    appeal_instance_id: int | None = Field(default=None)
    created_at: datetime = ts_field(default_now=True)
    confirmed_at: datetime | None = ts_field(nullable=True)


class Penalty(SQLModel, table=True):
    """奖惩数据: 未下发 (pending) → 已下发 (issued) → 已结束 (ended)."""

    __tablename__ = "penalty"
    __table_args__ = (
        # One periodic penalty per doctor, rule and period; updated as scores arrive.
        sa.Index(
            "uq_penalty_periodic",
            "rule_id",
            "doctor_id",
            "period_start",
            unique=True,
            postgresql_where=sa.text("kind = 'periodic'"),
            sqlite_where=sa.text("kind = 'periodic'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=10)  # one_off | periodic
    rule_id: int = Field(foreign_key="penalty_rule.id")
    doctor_id: int = Field(foreign_key="user.id", index=True)
    department_id: int | None = Field(default=None, foreign_key="department.id")
    period_start: date | None = Field(default=None)
    period_end: date | None = Field(default=None)  # exclusive
    total_points: float = Field(default=0)
    measure: str = Field(default="", max_length=300)
    status: str = Field(default="pending", max_length=10, index=True)
    issued_at: datetime | None = ts_field(nullable=True)
    issued_by_id: int | None = Field(default=None, foreign_key="user.id")
    ended_at: datetime | None = ts_field(nullable=True)
    end_reason: str | None = Field(default=None, max_length=500)
    suspension_id: int | None = Field(default=None)
    created_at: datetime = ts_field(default_now=True)
    updated_at: datetime = ts_field(default_now=True)


class PenaltyScoreLink(SQLModel, table=True):
    __tablename__ = "penalty_score_link"

    penalty_id: int = Field(foreign_key="penalty.id", primary_key=True)
    score_id: int = Field(foreign_key="penalty_score.id", primary_key=True, index=True)
