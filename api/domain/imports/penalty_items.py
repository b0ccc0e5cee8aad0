"""The negative list (负面清单): code, category, what is scored, points, effective date.

A changed item is published as a new version from its 生效日期; the previous version
stays in force for behaviour before that day. An unchanged item is left alone.
"""

from __future__ import annotations

from typing import Any

from api.domain import penalties
from api.domain.imports.base import CREATE, UNCHANGED, UPDATE, ImportContext, Outcome
from api.domain.imports.table import Column, FieldError, day, decimal, text
from api.models.penalties import PenaltyItem

TITLE = "负面清单 penalty items"
COLUMNS = [
    Column("code", "条目编码", "code", True, "HX-01"),
    Column("category", "类别", "category", False, "核心制度"),
    Column("name", "条目内容", "item", True, "未执行术前讨论制度"),
    Column("points", "分值", "points", True, "3", "每次记分 / points per occurrence"),
    Column(
        "effective_from",
        "生效日期",
        "effective from",
        True,
        "2026-01-01",
        "修改已有条目时须晚于上一版本 / a changed item needs a later date than its last version",
    ),
]
KEY_COLUMN = "code"
FIELDS = {"effectiveFrom": "effective_from", "points": "points", "code": "code", "name": "name"}


def parse(values: dict[str, Any]) -> dict[str, Any]:
    points = decimal(values.get("points"), "points", required=True)
    if points is None or points <= 0:
        raise FieldError("points", "分值须大于 0 / points must be positive")
    return {
        "code": text(values.get("code"), "code", required=True, max_length=40),
        "category": text(values.get("category"), "category", max_length=60),
        "name": text(values.get("name"), "name", required=True, max_length=300),
        "points": points,
        "effective_from": day(values.get("effective_from"), "effective_from", required=True),
    }


def key(record: dict[str, Any]) -> str:
    return str(record["code"])


async def prepare(ctx: ImportContext) -> None:
    latest: dict[str, PenaltyItem] = {}
    for item in await penalties.negative_list(ctx.session):  # ordered by code, version
        latest[item.code] = item
    ctx.cache["latest"] = latest


async def apply(ctx: ImportContext, record: dict[str, Any]) -> Outcome:
    what = f"{record['code']} {record['name']} ({record['points']:g})"
    previous: PenaltyItem | None = ctx.cache["latest"].get(record["code"])
    if previous is not None:
        changes = [k for k in ("category", "name", "points") if getattr(previous, k) != record[k]]
        if not changes:
            return Outcome(UNCHANGED, what)
    item = await penalties.publish_item_version(ctx.session, **record, actor=ctx.actor)
    if previous is None:
        return Outcome(CREATE, what)
    return Outcome(UPDATE, what, [*changes, f"version {item.version}"])
