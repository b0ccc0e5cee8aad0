"""The negative list (负面清单) and the penalty rules: versioned, each version in force
from its day until the next one's, so behaviour is judged by the rules of its own day."""

from __future__ import annotations

from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.auth import Actor
from api.domain.penalties.access import ISSUERS
from api.domain.penalties.states import SUSPENSION_SCOPES, Period, RuleKind
from api.errors import forbidden, invalid
from api.models.penalties import PenaltyItem, PenaltyRule


def in_force(model: type[PenaltyItem] | type[PenaltyRule], day: date) -> sa.ColumnElement[bool]:
    return sa.and_(
        col(model.effective_from) <= day,
        sa.or_(col(model.effective_to).is_(None), col(model.effective_to) > day),
    )


def period_bounds(period: str, day: date) -> tuple[date, date]:
    """[start, end) of the calendar year, quarter or month containing `day`."""
    if period == Period.YEAR:
        return date(day.year, 1, 1), date(day.year + 1, 1, 1)
    if period == Period.QUARTER:
        first = 3 * ((day.month - 1) // 3) + 1
    elif period == Period.MONTH:
        first = day.month
    else:
        raise ValueError(f"unknown period {period!r}")
    start = date(day.year, first, 1)
    end_month = first + (3 if period == Period.QUARTER else 1)
    end = date(day.year + (end_month - 1) // 12, (end_month - 1) % 12 + 1, 1)
    return start, end


async def item_in_force(session: AsyncSession, code: str, day: date) -> PenaltyItem:
    item = (
        (
            await session.execute(
                sa.select(PenaltyItem)
                .where(col(PenaltyItem.code) == code, in_force(PenaltyItem, day))
                .order_by(col(PenaltyItem.version).desc())
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
    stmt = sa.select(PenaltyItem).order_by(col(PenaltyItem.code), col(PenaltyItem.version))
    if at is not None:
        stmt = stmt.where(in_force(PenaltyItem, at))
    return list((await session.execute(stmt)).scalars())


def _next_effective_from(previous: PenaltyItem | PenaltyRule | None, effective_from: date) -> None:
    """A new version starts after the previous one did, and ends it."""
    if previous is None:
        return
    if effective_from <= previous.effective_from:
        raise invalid(
            "effectiveFrom",
            "新版本生效日期须晚于上一版本 / must be after the previous version's start",
        )
    previous.effective_to = effective_from


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
                .where(col(PenaltyItem.code) == code)
                .order_by(col(PenaltyItem.version).desc())
            )
        )
        .scalars()
        .first()
    )
    _next_effective_from(previous, effective_from)
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
                sa.select(PenaltyRule)
                .where(in_force(PenaltyRule, day))
                .order_by(col(PenaltyRule.code))
            )
        ).scalars()
    )


def _check_rule(kind: str, period: str | None, threshold: float, action: dict[str, Any]) -> None:
    if kind not in tuple(RuleKind):
        raise invalid("kind", "规则类型须为 one_off 或 periodic / kind must be one_off or periodic")
    if kind == RuleKind.PERIODIC and period not in tuple(Period):
        raise invalid(
            "period", "周期须为 year、quarter 或 month / period must be year, quarter or month"
        )
    if threshold <= 0:
        raise invalid("threshold", "阈值须大于 0 / threshold must be positive")
    suspend = action.get("suspend")
    if suspend is not None and (
        suspend.get("scope") not in SUSPENSION_SCOPES or int(suspend.get("days", 0)) <= 0
    ):
        raise invalid(
            "action", "暂停权限须指定范围与天数 / suspension needs a scope and a number of days"
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
    _check_rule(kind, period, threshold, action or {})
    previous = (
        (
            await session.execute(
                sa.select(PenaltyRule)
                .where(col(PenaltyRule.code) == code)
                .order_by(col(PenaltyRule.version).desc())
            )
        )
        .scalars()
        .first()
    )
    _next_effective_from(previous, effective_from)
    rule = PenaltyRule(
        code=code,
        version=(previous.version + 1) if previous else 1,
        name=name,
        kind=kind,
        threshold=threshold,
        period=period if kind == RuleKind.PERIODIC else None,
        measure=measure,
        action=action or {},
        effective_from=effective_from,
    )
    session.add(rule)
    await session.flush()
    return rule
