"""下发 and 结束: a penalty goes 未下发 pending → 已下发 issued → 已结束 ended, each change
told point to point to the doctor and the department chief, repeating until read
(notification policy `penalty`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.auth import Actor
from api.domain.penalties import history
from api.domain.penalties.access import ISSUERS
from api.domain.penalties.states import STATUS_ZH, PenaltyStatus
from api.domain.people import department_head
from api.domain.settings_of import local_day
from api.errors import DomainError, ErrorCode, forbidden, invalid
from api.models.base import utcnow
from api.models.penalties import Penalty, PenaltyItem, PenaltyRule, PenaltyScore, PenaltyScoreLink
from api.models.people import User
from api.texts import split as split_text
from notifications import outbox

TITLES = {
    "issued": "奖惩通知书 / penalty notice",
    "updated": "奖惩更新通知 / penalty updated",
    "ended": "奖惩已结束 / penalty ended",
}


async def notify(
    session: AsyncSession, penalty: Penalty, event: str, actor: Actor, now: datetime
) -> None:
    """点对点通知当事人 (and the department chief), repeating until each has read it."""
    doctor = await session.get(User, penalty.doctor_id)
    assert doctor is not None
    rule = await session.get(PenaltyRule, penalty.rule_id)
    chief = await department_head(session, penalty.department_id)
    rule_texts = split_text(rule.name if rule else "")
    counted = (
        await session.execute(
            sa.select(PenaltyScore, PenaltyItem)
            .join(PenaltyScoreLink, col(PenaltyScoreLink.score_id) == col(PenaltyScore.id))
            .join(PenaltyItem, col(PenaltyItem.id) == col(PenaltyScore.item_id))
            .where(col(PenaltyScoreLink.penalty_id) == penalty.id)
            .order_by(col(PenaltyScore.occurred_at))
        )
    ).all()
    scores_zh = "；".join(
        f"{local_day(session, s.occurred_at):%Y-%m-%d} {split_text(i.name).zh} {s.points:g} 分"
        for s, i in counted
    )
    scores_en = "; ".join(
        f"{local_day(session, s.occurred_at):%Y-%m-%d} {split_text(i.name).en} {s.points:g}"
        for s, i in counted
    )
    measure = split_text(penalty.measure or "")
    period_zh, period_en = _period(penalty)
    body_zh = (
        f"{doctor.display_name}：{rule_texts.zh}\n"
        f"累计记分：{penalty.total_points:g} 分\n"
        f"记分事项：{scores_zh or '—'}\n"
        f"统计期：{period_zh}\n"
        f"处理决定：{measure.zh or '—'}\n"
        f"状态：{STATUS_ZH[PenaltyStatus(penalty.status)]}\n"
        f"{APPEAL_ZH}"
    )
    body_en = (
        f"{doctor.display_name}: {rule_texts.en}\n"
        f"Points: {penalty.total_points:g}\n"
        f"Scores: {scores_en or '-'}\n"
        f"Period: {period_en}\n"
        f"Measure: {measure.en or '-'}\n"
        f"Status: {penalty.status}\n"
        f"{APPEAL_EN}"
    )
    body = f"{body_zh} / {body_en}"
    version = int(
        (
            await session.execute(
                sa.select(sa.func.count())
                .select_from(PenaltyScoreLink)
                .where(col(PenaltyScoreLink.penalty_id) == penalty.id)
            )
        ).scalar_one()
    )
    recipients = [doctor] + ([chief] if chief is not None and chief.id != doctor.id else [])
    for person in recipients:
        assert person.id is not None
        await outbox.enqueue(
            session,
            recipient_id=person.id,
            kind=f"penalty.{event}",
            title=TITLES[event],
            body=body[:2000],
            # Each language whole, so no client ever cuts a text apart to find its language.
            texts=outbox.NoticeTexts(
                *_split_title(TITLES[event]), body_zh=body_zh[:2000], body_en=body_en[:2000]
            ),
            idempotency_key=f"penalty:{penalty.id}:{event}:{version}:{person.id}",
            subject_type="penalty",
            subject_id=penalty.id,
            sender_id=actor.user_id or None,
            policy="penalty" if event != "ended" else "once",
        )


APPEAL_ZH = (
    "如何申诉：对某次记分有异议的，在该记分通知中点“申诉”并写明理由（记分确认前）；"
    "对处理决定有异议的，请向医务处申请复核。"
)
APPEAL_EN = (
    "To appeal: tap 'Appeal' on the score's notice and give your reason (before the score is"
    " confirmed); to contest the measure, ask medical affairs for a review."
)


def _period(penalty: Penalty) -> tuple[str, str]:
    """The period the points were counted over, in words (its end is exclusive)."""
    if penalty.period_start is None or penalty.period_end is None:
        return "单次记分", "a single score"
    last = penalty.period_end - timedelta(days=1)
    return (
        f"{penalty.period_start:%Y-%m-%d} 至 {last:%Y-%m-%d}",
        f"{penalty.period_start:%Y-%m-%d} to {last:%Y-%m-%d}",
    )


def _split_title(title: str) -> tuple[str, str]:
    parts = split_text(title)
    return parts.zh, parts.en


async def issue_penalty(
    session: AsyncSession, penalty: Penalty, *, actor: Actor, now: datetime | None = None
) -> Penalty:
    """下发: pending → issued; suspends privileges when the rule says so."""
    if not actor.has_role(*ISSUERS):
        raise forbidden("仅医务处可下发奖惩 / only medical affairs issue penalties")
    if penalty.status == PenaltyStatus.ISSUED:
        return penalty
    if penalty.status != PenaltyStatus.PENDING:
        raise DomainError(
            ErrorCode.CONFLICT, "奖惩已结束，不能下发 / the penalty has ended", field="id"
        )
    now = now or utcnow()
    penalty.status, penalty.issued_at, penalty.issued_by_id, penalty.updated_at = (
        PenaltyStatus.ISSUED,
        now,
        actor.user_id,
        now,
    )
    rule = await session.get(PenaltyRule, penalty.rule_id)
    suspend = (rule.action or {}).get("suspend") if rule else None
    data: dict[str, Any] = {}
    if rule is not None and suspend:
        from api.domain.privileges import suspend_privileges

        suspension = await suspend_privileges(
            session,
            penalty.doctor_id,
            scope=suspend["scope"],
            reason=f"不良执业奖惩 / penalty: {rule.name}"[:200],
            starts_at=now,
            ends_at=now + timedelta(days=int(suspend["days"])),
            actor=actor,
            source=f"penalty:{penalty.id}",
        )
        penalty.suspension_id = suspension.id
        data = {
            "suspension_id": suspension.id,
            "scope": suspend["scope"],
            "days": int(suspend["days"]),
        }
    await session.flush()
    await history.record(session, penalty, "issued", actor, now, **data)
    await notify(session, penalty, "issued", actor, now)
    return penalty


async def end_penalty(
    session: AsyncSession,
    penalty: Penalty,
    *,
    actor: Actor,
    reason: str,
    now: datetime | None = None,
) -> Penalty:
    """已结束: served, or cannot be issued for a special reason (其他处理)."""
    if not actor.has_role(*ISSUERS):
        raise forbidden("仅医务处可结束奖惩 / only medical affairs end penalties")
    if penalty.status == PenaltyStatus.ENDED:
        return penalty
    reason = (reason or "").strip()
    if not reason or len(reason) > 500:
        raise invalid("reason", "请填写结束原因 / give a reason (up to 500 characters)")
    now = now or utcnow()
    was = penalty.status
    penalty.status, penalty.ended_at, penalty.end_reason, penalty.updated_at = (
        PenaltyStatus.ENDED,
        now,
        reason,
        now,
    )
    await session.flush()
    await history.record(session, penalty, "ended", actor, now, reason=reason, was=was)
    if was == PenaltyStatus.ISSUED:
        await notify(session, penalty, "ended", actor, now)
    return penalty
