"""记分 and 申诉: a score recorded by a functional department, confirmed or appealed.

The appeal is an approval (`penalty_appeal`) reviewed by medical affairs (复核): upheld
revokes the score, rejected confirms it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.auth import SYSTEM_ACTOR, Actor
from api.domain.penalties.access import SCORERS
from api.domain.penalties.calculation import calculate
from api.domain.penalties.catalog import item_in_force
from api.domain.penalties.states import ScoreStatus
from api.domain.settings_of import local_day
from api.errors import DomainError, ErrorCode, forbidden, invalid
from api.models.base import utcnow
from api.models.penalties import Penalty, PenaltyScore
from api.models.people import Role, User
from api.settings import Settings
from api.texts import split as split_text
from notifications import outbox

APPEAL_DEFINITION = "penalty_appeal"
APPEAL_SOURCE = (
    Path(__file__).resolve().parents[1]
    / "approvals"
    / "definitions"
    / f"{APPEAL_DEFINITION}.v1.yaml"
).read_text(encoding="utf-8")


async def record_score(
    session: AsyncSession,
    *,
    doctor: User,
    item_code: str,
    occurred_at: datetime,
    description: str,
    recorder_unit: str,
    actor: Actor,
    settings: Settings | None = None,
    now: datetime | None = None,
) -> PenaltyScore:
    """记分: judged by the negative-list item in force on the day it happened."""
    if not actor.has_role(*SCORERS):
        raise forbidden("仅职能部门可记分 / only functional departments record scores")
    now = now or utcnow()
    if occurred_at > now + timedelta(minutes=5):
        raise invalid("occurredAt", "发生时间不能晚于现在 / occurredAt is in the future")
    if len(description) > 1000:
        raise invalid("description", "说明过长 / description too long")
    if not recorder_unit.strip() or len(recorder_unit) > 60:
        raise invalid("recorderUnit", "请填写记分部门 / name the scoring department")
    if Role.PATIENT.value in (doctor.roles or []):
        raise invalid("doctorUsername", "只能对医务人员记分 / only staff can be scored")
    item = await item_in_force(session, item_code, local_day(session, occurred_at, settings))
    assert doctor.id is not None and item.id is not None
    score = PenaltyScore(
        doctor_id=doctor.id,
        department_id=doctor.department_id,
        item_id=item.id,
        points=item.points,
        occurred_at=occurred_at,
        description=description.strip(),
        recorded_by_id=actor.user_id,
        recorder_unit=recorder_unit.strip(),
        created_at=now,
    )
    session.add(score)
    await session.flush()
    await outbox.enqueue(
        session,
        recipient_id=doctor.id,
        kind="penalty.score",
        title=f"不良执业记分通知 / bad-practice score: {item.name}"[:200],
        body=f"{recorder_unit} 记 {item.points:g} 分。如有异议请在系统中申诉。/ {item.points:g} points by {recorder_unit}; you may appeal.",
        # Each language whole: the item's name is itself "中文 / English".
        texts=outbox.NoticeTexts(
            f"不良执业记分通知：{split_text(item.name).zh}"[:200],
            f"Bad-practice score: {split_text(item.name).en}"[:200],
            body_zh=(
                f"{split_text(item.name).zh}\n{recorder_unit}记 {item.points:g} 分"
                f"（{local_day(session, occurred_at, settings):%Y-%m-%d}）。"
                f"{description.strip()}\n如有异议，请点“申诉”写明理由，记分确认前由医务处复核。"
            )[:2000],
            body_en=(
                f"{split_text(item.name).en}\n{item.points:g} points by {recorder_unit}"
                f" ({local_day(session, occurred_at, settings):%Y-%m-%d}).\n"
                "If you disagree, tap 'Appeal' and give your reason; medical affairs review it"
                " before the score is confirmed."
            )[:2000],
        ),
        idempotency_key=f"penalty-score:{score.id}:notified",
        subject_type="penalty_score",
        subject_id=score.id,
        sender_id=actor.user_id or None,
        policy="penalty",
    )
    return score


async def confirm_score(
    session: AsyncSession,
    score: PenaltyScore,
    *,
    actor: Actor,
    now: datetime | None = None,
    settings: Settings | None = None,
) -> list[Penalty]:
    """确认记分; returns the penalties the calculation created or updated."""
    if actor.user_id and not actor.has_role(*SCORERS):
        raise forbidden("仅职能部门可确认记分 / only functional departments confirm scores")
    if score.status == ScoreStatus.CONFIRMED:
        return []
    if score.status != ScoreStatus.NOTIFIED and actor.user_id:
        raise DomainError(
            ErrorCode.CONFLICT,
            "记分已在申诉复核中或已撤销 / the score is under appeal or revoked",
            field="id",
        )
    now = now or utcnow()
    score.status, score.confirmed_at = ScoreStatus.CONFIRMED, now
    await session.flush()
    return await calculate(session, score, actor=actor, now=now, settings=settings)


async def appeal_score(
    session: AsyncSession,
    score: PenaltyScore,
    *,
    actor: Actor,
    reason: str,
    now: datetime | None = None,
) -> PenaltyScore:
    """申诉: only the doctor scored, only before confirmation; reviewed as an approval."""
    from api.domain.approvals import start_instance
    from api.domain.approvals.registry import latest_definition, load_source, publish_definition

    if actor.user_id != score.doctor_id:
        raise forbidden("只能对自己的记分申诉 / only your own scores can be appealed")
    if score.status == ScoreStatus.APPEALING:
        return score
    if score.status != ScoreStatus.NOTIFIED:
        raise DomainError(
            ErrorCode.CONFLICT,
            "记分已确认或已撤销，不能申诉 / the score is already confirmed or revoked",
            field="id",
        )
    reason = (reason or "").strip()
    if not reason or len(reason) > 1000:
        raise invalid("reason", "请填写申诉理由 / give a reason (up to 1000 characters)")
    try:
        await latest_definition(session, APPEAL_DEFINITION)
    except DomainError:  # first appeal on a fresh database: publish the repository's definition
        await publish_definition(session, load_source(APPEAL_SOURCE))
    doctor = await session.get(User, score.doctor_id)
    assert doctor is not None
    instance = await start_instance(
        session,
        definition_key=APPEAL_DEFINITION,
        applicant=doctor,
        data={"score_id": score.id, "reason": reason, "points": score.points},
        subject_type="penalty_score",
        subject_id=score.id,
        actor=actor,
        now=now,
    )
    score.status, score.appeal_reason, score.appeal_instance_id = (
        ScoreStatus.APPEALING,
        reason,
        instance.id,
    )
    await session.flush()
    return score


async def _score_of(session: AsyncSession, instance: Any) -> PenaltyScore | None:
    if instance.subject_type != "penalty_score" or instance.subject_id is None:
        return None
    return (
        await session.execute(
            sa.select(PenaltyScore)
            .where(col(PenaltyScore.id) == instance.subject_id)
            .with_for_update()
        )
    ).scalar_one_or_none()


async def _on_appeal_upheld(
    session: AsyncSession, instance: Any, actor: Actor, now: datetime
) -> None:
    score = await _score_of(session, instance)
    if score is None or score.status != ScoreStatus.APPEALING:
        return
    score.status = ScoreStatus.REVOKED
    await outbox.enqueue(
        session,
        recipient_id=score.doctor_id,
        kind="penalty.appeal",
        title="申诉成立，记分已撤销 / appeal upheld, score revoked",
        idempotency_key=f"penalty-score:{score.id}:revoked",
        subject_type="penalty_score",
        subject_id=score.id,
        sender_id=actor.user_id or None,
        policy="once",
    )


async def _on_appeal_closed(
    session: AsyncSession, instance: Any, actor: Actor, now: datetime
) -> None:
    score = await _score_of(session, instance)
    if score is None or score.status != ScoreStatus.APPEALING:
        return
    if instance.status == "rejected":
        score.status, score.confirmed_at = ScoreStatus.CONFIRMED, now
        await outbox.enqueue(
            session,
            recipient_id=score.doctor_id,
            kind="penalty.appeal",
            title="申诉未通过，记分已确认 / appeal rejected, score confirmed",
            idempotency_key=f"penalty-score:{score.id}:confirmed",
            subject_type="penalty_score",
            subject_id=score.id,
            sender_id=actor.user_id or None,
            policy="once",
        )
        await session.flush()
        await calculate(session, score, actor=SYSTEM_ACTOR, now=now)
    else:  # withdrawn or blocked: back to where it was, the doctor may confirm or appeal again
        score.status = ScoreStatus.NOTIFIED


def register_appeal_hooks() -> None:
    from api.domain.approvals import register_closing_hook, register_completion_hook

    register_completion_hook(APPEAL_DEFINITION, _on_appeal_upheld)
    register_closing_hook(APPEAL_DEFINITION, _on_appeal_closed)
