"""不良执业管理: the negative list, scores, appeals, penalty rules and issuing (seed 004).

记分 (a score) is recorded by a functional department (医务处, 药剂科, 感染办 …) against a
doctor and department, and the doctor is told at once. The doctor may appeal (申诉); the
appeal is an approval (`penalty_appeal`) reviewed by medical affairs (复核): upheld revokes
the score, rejected confirms it. A score can also be confirmed directly.

A confirmed score triggers the calculation (奖惩计算) with the rules in force when the
behaviour happened: a one-off rule makes one penalty per score at or over its threshold;
a periodic rule keeps one penalty per doctor and period, linked to every confirmed score
of that period, created when the total reaches the threshold and updated as more arrive.
Penalties go 未下发 pending → 已下发 issued → 已结束 ended; each change is appended to the
hash chain `penalty:{id}` and told point to point to the people concerned, repeating until
they read it (notification policy `penalty`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api import audit
from api.auth import SYSTEM_ACTOR, Actor
from api.domain.people import department_head
from api.errors import DomainError, ErrorCode, forbidden, invalid, not_found
from api.models.base import utcnow
from api.models.penalties import Penalty, PenaltyItem, PenaltyRule, PenaltyScore, PenaltyScoreLink
from api.models.people import Department, Role, User
from api.settings import Settings
from api.texts import split as split_text
from notifications import outbox

APPEAL_DEFINITION = "penalty_appeal"
SCORERS = (Role.MEDICAL_AFFAIRS, Role.QUALITY, Role.ADMIN)
ISSUERS = (Role.MEDICAL_AFFAIRS, Role.ADMIN)
OVERSEERS = (Role.MEDICAL_AFFAIRS, Role.QUALITY, Role.ADMIN)
APPEAL_SOURCE = (
    Path(__file__).resolve().parent / "approvals" / "definitions" / f"{APPEAL_DEFINITION}.v1.yaml"
).read_text(encoding="utf-8")
STATUS_ZH = {"pending": "未下发", "issued": "已下发", "ended": "已结束"}


def penalty_stream(penalty_id: int) -> str:
    return f"penalty:{penalty_id}"


async def _expected_streams(session: AsyncSession) -> list[str]:
    return [penalty_stream(i) for i in (await session.execute(sa.select(Penalty.id))).scalars()]


audit.expected_stream_sources.append(_expected_streams)


def _in_force(model: Any, day: date) -> sa.ColumnElement[bool]:
    return sa.and_(
        model.effective_from <= day, sa.or_(model.effective_to.is_(None), model.effective_to > day)
    )


def _local_day(moment: datetime, settings: Settings | None) -> date:
    from zoneinfo import ZoneInfo

    return moment.astimezone(settings.tz if settings else ZoneInfo("Asia/Shanghai")).date()


def period_bounds(period: str, day: date) -> tuple[date, date]:
    """[start, end) of the calendar year, quarter or month containing `day`."""
    if period == "year":
        return date(day.year, 1, 1), date(day.year + 1, 1, 1)
    if period == "quarter":
        first = 3 * ((day.month - 1) // 3) + 1
        start = date(day.year, first, 1)
    elif period == "month":
        first = day.month
        start = date(day.year, first, 1)
    else:
        raise ValueError(f"unknown period {period!r}")
    months = 3 if period == "quarter" else 1
    end_month = first + months
    end = date(day.year + (end_month - 1) // 12, (end_month - 1) % 12 + 1, 1)
    return start, end


# ----------------------------------------------------------------------------- catalog
async def item_in_force(session: AsyncSession, code: str, day: date) -> PenaltyItem:
    item = (
        (
            await session.execute(
                sa.select(PenaltyItem)
                .where(PenaltyItem.code == code, _in_force(PenaltyItem, day))
                .order_by(PenaltyItem.version.desc())
            )
        )
        .scalars()
        .first()
    )
    if item is None:
        raise invalid(
            "itemCode",
            f"负面清单中无此条目或当时未生效 / no negative-list item {code} in force on {day}",
        )
    return item


async def negative_list(session: AsyncSession, *, at: date | None = None) -> list[PenaltyItem]:
    stmt = sa.select(PenaltyItem).order_by(PenaltyItem.code, PenaltyItem.version)
    if at is not None:
        stmt = stmt.where(_in_force(PenaltyItem, at))
    return list((await session.execute(stmt)).scalars())


async def publish_item_version(
    session: AsyncSession,
    *,
    code: str,
    name: str,
    points: float,
    category: str = "",
    effective_from: date,
    actor: Actor,
) -> PenaltyItem:
    """A new version of a negative-list item from `effective_from`; the previous version
    stays for behaviour before that day (负面清单更新升级)."""
    if actor.user_id and not actor.has_role(*ISSUERS):
        raise forbidden("仅医务处可维护负面清单 / only medical affairs maintain the negative list")
    if points <= 0:
        raise invalid("points", "分值须大于 0 / points must be positive")
    if not code.strip() or not name.strip():
        raise invalid("code" if not code.strip() else "name", "不能为空 / required")
    previous = (
        (
            await session.execute(
                sa.select(PenaltyItem)
                .where(PenaltyItem.code == code)
                .order_by(PenaltyItem.version.desc())
            )
        )
        .scalars()
        .first()
    )
    if previous is not None:
        if effective_from <= previous.effective_from:
            raise invalid(
                "effectiveFrom",
                "新版本生效日期须晚于上一版本 / must be after the previous version's start",
            )
        previous.effective_to = effective_from
    item = PenaltyItem(
        code=code.strip(),
        version=(previous.version + 1) if previous else 1,
        name=name.strip(),
        points=points,
        category=category,
        effective_from=effective_from,
    )
    session.add(item)
    await session.flush()
    return item


async def rules_in_force(session: AsyncSession, day: date) -> list[PenaltyRule]:
    return list(
        (
            await session.execute(
                sa.select(PenaltyRule).where(_in_force(PenaltyRule, day)).order_by(PenaltyRule.code)
            )
        ).scalars()
    )


async def publish_rule_version(
    session: AsyncSession,
    *,
    code: str,
    name: str,
    kind: str,
    threshold: float,
    period: str | None = None,
    measure: str = "",
    action: dict[str, Any] | None = None,
    effective_from: date,
    actor: Actor,
) -> PenaltyRule:
    if actor.user_id and not actor.has_role(*ISSUERS):
        raise forbidden("仅医务处可维护奖惩规则 / only medical affairs maintain penalty rules")
    if kind not in ("one_off", "periodic"):
        raise invalid("kind", "规则类型须为 one_off 或 periodic / kind must be one_off or periodic")
    if kind == "periodic" and period not in ("year", "quarter", "month"):
        raise invalid(
            "period", "周期须为 year、quarter 或 month / period must be year, quarter or month"
        )
    if threshold <= 0:
        raise invalid("threshold", "阈值须大于 0 / threshold must be positive")
    suspend = (action or {}).get("suspend")
    if suspend is not None and (
        suspend.get("scope") not in ("surgery", "prescribing", "antibiotics", "antitumor", "all")
        or int(suspend.get("days", 0)) <= 0
    ):
        raise invalid(
            "action", "暂停权限须指定范围与天数 / suspension needs a scope and a number of days"
        )
    previous = (
        (
            await session.execute(
                sa.select(PenaltyRule)
                .where(PenaltyRule.code == code)
                .order_by(PenaltyRule.version.desc())
            )
        )
        .scalars()
        .first()
    )
    if previous is not None:
        if effective_from <= previous.effective_from:
            raise invalid(
                "effectiveFrom",
                "新版本生效日期须晚于上一版本 / must be after the previous version's start",
            )
        previous.effective_to = effective_from
    rule = PenaltyRule(
        code=code,
        version=(previous.version + 1) if previous else 1,
        name=name,
        kind=kind,
        threshold=threshold,
        period=period if kind == "periodic" else None,
        measure=measure,
        action=action or {},
        effective_from=effective_from,
    )
    session.add(rule)
    await session.flush()
    return rule


# ----------------------------------------------------------------------------- access
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
    stmt = sa.select(PenaltyScore).where(PenaltyScore.id == score_id)
    score = (await session.execute(stmt.with_for_update() if lock else stmt)).scalar_one_or_none()
    doctor = await session.get(User, score.doctor_id) if score else None
    if score is None or doctor is None or not can_see_doctor(actor, doctor):
        raise not_found("记分", "score")
    return score


async def access_penalty(
    session: AsyncSession, actor: Actor, penalty_id: int, *, lock: bool = False
) -> Penalty:
    stmt = sa.select(Penalty).where(Penalty.id == penalty_id)
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


# ----------------------------------------------------------------------------- scores
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
    item = await item_in_force(session, item_code, _local_day(occurred_at, settings))
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
    if score.status == "confirmed":
        return []
    if score.status != "notified" and actor.user_id:
        raise DomainError(
            ErrorCode.CONFLICT,
            "记分已在申诉复核中或已撤销 / the score is under appeal or revoked",
            field="id",
        )
    now = now or utcnow()
    score.status, score.confirmed_at = "confirmed", now
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
    if score.status == "appealing":
        return score
    if score.status != "notified":
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
    score.status, score.appeal_reason, score.appeal_instance_id = "appealing", reason, instance.id
    await session.flush()
    return score


async def _score_of(session: AsyncSession, instance: Any) -> PenaltyScore | None:
    if instance.subject_type != "penalty_score" or instance.subject_id is None:
        return None
    return (
        await session.execute(
            sa.select(PenaltyScore).where(PenaltyScore.id == instance.subject_id).with_for_update()
        )
    ).scalar_one_or_none()


async def _on_appeal_upheld(
    session: AsyncSession, instance: Any, actor: Actor, now: datetime
) -> None:
    score = await _score_of(session, instance)
    if score is None or score.status != "appealing":
        return
    score.status = "revoked"
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
    if score is None or score.status != "appealing":
        return
    if instance.status == "rejected":
        score.status, score.confirmed_at = "confirmed", now
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
        score.status = "notified"


def _register_hooks() -> None:
    try:
        from api.domain.approvals import register_closing_hook, register_completion_hook
    except ImportError:  # pragma: no cover - the approval engine is part of the product
        return
    register_completion_hook(APPEAL_DEFINITION, _on_appeal_upheld)
    register_closing_hook(APPEAL_DEFINITION, _on_appeal_closed)


_register_hooks()


# ----------------------------------------------------------------------------- calculation
async def _append(
    session: AsyncSession, penalty: Penalty, action: str, actor: Actor, now: datetime, **data: Any
) -> None:
    body = {
        "status": penalty.status,
        "kind": penalty.kind,
        "rule_id": penalty.rule_id,
        "doctor_id": penalty.doctor_id,
        "total_points": penalty.total_points,
        **data,
    }
    await audit.append_event(
        session, penalty_stream(penalty.id), action, actor=actor, data=body, at=now
    )  # type: ignore[arg-type]


async def _link(session: AsyncSession, penalty: Penalty, score_ids: list[int]) -> list[int]:
    existing = set(
        (
            await session.execute(
                sa.select(PenaltyScoreLink.score_id).where(
                    PenaltyScoreLink.penalty_id == penalty.id
                )
            )
        ).scalars()
    )
    new = [s for s in score_ids if s not in existing]
    for score_id in new:
        session.add(PenaltyScoreLink(penalty_id=penalty.id, score_id=score_id))  # type: ignore[arg-type]
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
    day = _local_day(score.occurred_at, settings)
    touched: list[Penalty] = []
    for rule in await rules_in_force(session, day):
        if rule.kind == "one_off":
            if score.points < rule.threshold:
                continue
            exists = (
                await session.execute(
                    sa.select(Penalty.id)
                    .join(PenaltyScoreLink, PenaltyScoreLink.penalty_id == Penalty.id)
                    .where(
                        Penalty.rule_id == rule.id,
                        Penalty.kind == "one_off",
                        PenaltyScoreLink.score_id == score.id,
                    )
                )
            ).scalar_one_or_none()
            if exists is not None:
                continue
            penalty = Penalty(
                kind="one_off",
                rule_id=rule.id,
                doctor_id=score.doctor_id,
                department_id=score.department_id,  # type: ignore[arg-type]
                total_points=score.points,
                measure=rule.measure,
                created_at=now,
                updated_at=now,
            )
            session.add(penalty)
            await session.flush()
            await _link(session, penalty, [score.id])  # type: ignore[list-item]
            await _append(
                session,
                penalty,
                "created",
                actor,
                now,
                score_ids=[score.id],
                rule=f"{rule.code}.v{rule.version}",
            )
            touched.append(penalty)
            continue
        start, end = period_bounds(rule.period or "year", day)
        tz_start = datetime.combine(
            start, datetime.min.time(), settings.tz if settings else _shanghai()
        )
        tz_end = datetime.combine(
            end, datetime.min.time(), settings.tz if settings else _shanghai()
        )
        scores = list(
            (
                await session.execute(
                    sa.select(PenaltyScore.id, PenaltyScore.points)
                    .where(
                        PenaltyScore.doctor_id == score.doctor_id,
                        PenaltyScore.status == "confirmed",
                        PenaltyScore.occurred_at >= tz_start,
                        PenaltyScore.occurred_at < tz_end,
                    )
                    .order_by(PenaltyScore.id)
                )
            ).all()
        )
        total = float(sum(p for _, p in scores))
        penalty = (
            await session.execute(
                sa.select(Penalty)
                .where(
                    Penalty.kind == "periodic",
                    Penalty.rule_id == rule.id,
                    Penalty.doctor_id == score.doctor_id,
                    Penalty.period_start == start,
                )
                .with_for_update()
            )
        ).scalar_one_or_none()
        if penalty is None:
            if total < rule.threshold:
                continue
            penalty = Penalty(
                kind="periodic",
                rule_id=rule.id,
                doctor_id=score.doctor_id,
                department_id=score.department_id,  # type: ignore[arg-type]
                period_start=start,
                period_end=end,
                total_points=total,
                measure=rule.measure,
                created_at=now,
                updated_at=now,
            )
            session.add(penalty)
            await session.flush()
            await _link(session, penalty, [s for s, _ in scores])
            await _append(
                session,
                penalty,
                "created",
                actor,
                now,
                score_ids=[s for s, _ in scores],
                rule=f"{rule.code}.v{rule.version}",
                period=[start.isoformat(), end.isoformat()],
            )
            touched.append(penalty)
            continue
        new = await _link(session, penalty, [s for s, _ in scores])
        if not new:
            continue
        penalty.total_points, penalty.updated_at = total, now
        await _append(session, penalty, "scores_added", actor, now, score_ids=new)
        if penalty.status == "issued":
            await _notify(session, penalty, "updated", actor, now)
        touched.append(penalty)
    return touched


def _shanghai() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Shanghai")


# ----------------------------------------------------------------------------- issuing
async def _notify(
    session: AsyncSession, penalty: Penalty, event: str, actor: Actor, now: datetime
) -> None:
    """点对点通知当事人 (and the department chief), repeating until each has read it."""
    doctor = await session.get(User, penalty.doctor_id)
    assert doctor is not None
    rule = await session.get(PenaltyRule, penalty.rule_id)
    chief = await department_head(session, penalty.department_id)
    titles = {
        "issued": "奖惩通知书 / penalty notice",
        "updated": "奖惩更新通知 / penalty updated",
        "ended": "奖惩已结束 / penalty ended",
    }
    body_zh = (
        f"{doctor.display_name}：{rule.name if rule else ''}，累计 {penalty.total_points:g} 分；处理：{penalty.measure or '—'}；"
        f"状态：{STATUS_ZH[penalty.status]}"
    )
    body_en = (
        f"{doctor.display_name}: {penalty.total_points:g} points; measure: {penalty.measure or '-'};"
        f" status: {penalty.status}"
    )
    body = f"{body_zh} / {body_en}"
    version = int(
        (
            await session.execute(
                sa.select(sa.func.count())
                .select_from(PenaltyScoreLink)
                .where(PenaltyScoreLink.penalty_id == penalty.id)
            )
        ).scalar_one()
    )
    recipients = [doctor] + ([chief] if chief is not None and chief.id != doctor.id else [])
    for person in recipients:
        await outbox.enqueue(
            session,
            recipient_id=person.id,  # type: ignore[arg-type]
            kind=f"penalty.{event}",
            title=titles[event],
            body=body[:2000],
            texts=outbox.NoticeTexts(
                *_split_title(titles[event]), body_zh=body_zh[:2000], body_en=body_en[:2000]
            ),
            idempotency_key=f"penalty:{penalty.id}:{event}:{version}:{person.id}",
            subject_type="penalty",
            subject_id=penalty.id,
            sender_id=actor.user_id or None,
            policy="penalty" if event != "ended" else "once",
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
    if penalty.status == "issued":
        return penalty
    if penalty.status != "pending":
        raise DomainError(
            ErrorCode.CONFLICT, "奖惩已结束，不能下发 / the penalty has ended", field="id"
        )
    now = now or utcnow()
    penalty.status, penalty.issued_at, penalty.issued_by_id, penalty.updated_at = (
        "issued",
        now,
        actor.user_id,
        now,
    )
    rule = await session.get(PenaltyRule, penalty.rule_id)
    suspend = (rule.action or {}).get("suspend") if rule else None
    data: dict[str, Any] = {}
    if suspend:
        from api.domain.privileges import suspend_privileges

        suspension = await suspend_privileges(
            session,
            penalty.doctor_id,
            scope=suspend["scope"],
            reason=f"不良执业奖惩 / penalty: {rule.name}"[:200],  # type: ignore[union-attr]
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
    await _append(session, penalty, "issued", actor, now, **data)
    await _notify(session, penalty, "issued", actor, now)
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
    if penalty.status == "ended":
        return penalty
    reason = (reason or "").strip()
    if not reason or len(reason) > 500:
        raise invalid("reason", "请填写结束原因 / give a reason (up to 500 characters)")
    now = now or utcnow()
    was = penalty.status
    penalty.status, penalty.ended_at, penalty.end_reason, penalty.updated_at = (
        "ended",
        now,
        reason,
        now,
    )
    await session.flush()
    await _append(session, penalty, "ended", actor, now, reason=reason, was=was)
    if was == "issued":
        await _notify(session, penalty, "ended", actor, now)
    return penalty


# ----------------------------------------------------------------------------- statistics
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
                PenaltyScore.department_id,
                PenaltyScore.doctor_id,
                sa.func.sum(PenaltyScore.points),
                sa.func.count(),
            )
            .where(
                PenaltyScore.status == "confirmed",
                PenaltyScore.occurred_at >= since,
                PenaltyScore.occurred_at < until,
                visible_clause(actor, PenaltyScore.doctor_id, PenaltyScore.department_id),
            )
            .group_by(PenaltyScore.department_id, PenaltyScore.doctor_id)
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
