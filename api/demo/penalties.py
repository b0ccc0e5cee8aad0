"""Demo negative list, penalty rules and a few scores for dr.li (idempotent)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.domain import penalties
from api.models.penalties import PenaltyItem, PenaltyRule, PenaltyScore
from api.models.people import User
from api.services import Services

ORDER = 40

SINCE = date(2024, 1, 1)

ITEMS = [
    ("HX-01", "核心制度", "未执行术前讨论制度 / no preoperative discussion", 3.0),
    ("HX-02", "核心制度", "病历书写不及时、不规范 / late or improper medical records", 1.0),
    ("CF-01", "处方管理", "超权限开具抗菌药物 / antibiotics beyond privilege", 4.0),
    ("GR-01", "院感", "手卫生不合格 / hand hygiene failure", 1.0),
    ("SS-01", "手术管理", "越级开展手术 / surgery beyond authorised grade", 6.0),
]

RULES = [
    dict(
        code="ONE-6",
        name="单次记分≥6分 / single score of 6 or more",
        kind="one_off",
        threshold=6.0,
        measure="暂停手术权限30天 / surgical privileges suspended for 30 days",
        action={"suspend": {"scope": "surgery", "days": 30}},
    ),
    dict(
        code="YEAR-12",
        name="年度累计≥12分 / 12 points within a year",
        kind="periodic",
        threshold=12.0,
        period="year",
        measure="全院通报批评 / hospital-wide reprimand",
        action={},
    ),
]


async def seed(session: AsyncSession, services: Services) -> dict[str, object]:
    for code, category, name, points in ITEMS:
        exists = (
            await session.execute(sa.select(PenaltyItem.id).where(PenaltyItem.code == code))
        ).first()
        if exists is None:
            session.add(
                PenaltyItem(
                    code=code,
                    version=1,
                    category=category,
                    name=name,
                    points=points,
                    effective_from=SINCE,
                )
            )
    for rule in RULES:
        exists = (
            await session.execute(sa.select(PenaltyRule.id).where(PenaltyRule.code == rule["code"]))
        ).first()
        if exists is None:
            session.add(PenaltyRule(version=1, effective_from=SINCE, **rule))  # type: ignore[arg-type]
    await session.flush()
    doctor = (
        await session.execute(sa.select(User).where(User.username == "dr.li"))
    ).scalar_one_or_none()
    scorer = (
        await session.execute(sa.select(User).where(User.username == "ma.zhao"))
    ).scalar_one_or_none()
    scores = 0
    if doctor is not None and scorer is not None:
        existing = (
            await session.execute(
                sa.select(sa.func.count())
                .select_from(PenaltyScore)
                .where(PenaltyScore.doctor_id == doctor.id)
            )
        ).scalar_one()
        if existing == 0:
            now = datetime.now(services.settings.tz)
            for days_ago, item_code, note in (
                (40, "HX-02", "出院记录超时 / discharge summary late"),
                (12, "GR-01", "手卫生抽查不合格 / hand hygiene spot check"),
            ):
                item = await penalties.item_in_force(
                    session, item_code, (now - timedelta(days=days_ago)).date()
                )
                session.add(
                    PenaltyScore(
                        doctor_id=doctor.id,
                        department_id=doctor.department_id,
                        item_id=item.id,
                        points=item.points,  # type: ignore[arg-type]
                        occurred_at=now - timedelta(days=days_ago),
                        description=note,
                        recorded_by_id=scorer.id,  # type: ignore[arg-type]
                        recorder_unit="医务处",
                        status="confirmed",
                        confirmed_at=now,
                    )
                )
                scores += 1
    return {
        "penalty_items": len(ITEMS),
        "penalty_rules": len(RULES),
        "penalty_scores_added": scores,
    }
