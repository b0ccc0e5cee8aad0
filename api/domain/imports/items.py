"""Treatment items (治疗项目, from the local price list 医疗服务价格项目) with their
department, duration, price, notes, consent text and, optionally, their templates.

A template column left empty keeps the item's current template. A changed consent text
is published as a new version (earlier signatures stay bound to the text they signed).
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

from api.domain.imports.base import CREATE, UNCHANGED, UPDATE, ImportContext, Outcome
from api.domain.imports.table import Column, FieldError, boolean, integer, text
from api.domain.treatments.items import save_item
from api.models.people import Department

TITLE = "治疗项目 treatment items"
COLUMNS = [
    Column("code", "项目编码", "code", True, "PHYSIO", "院内收费编码 / the price list code"),
    Column("name", "项目名称", "name", True, "理疗"),
    Column("name_en", "英文名称", "English name", False, "Physiotherapy"),
    Column("department", "科室编码", "department code", False, "REHAB"),
    Column("duration", "时长(分钟)", "minutes", False, "30"),
    Column("price", "单价(元)", "price (yuan)", False, "60.00"),
    Column("notes", "注意事项", "notes", False, "请提前10分钟到达"),
    Column("requires_consent", "需知情同意", "requires consent", False, "是"),
    Column("consent_title", "知情同意书标题", "consent title", False, "理疗知情同意书"),
    Column(
        "consent_body",
        "知情同意书正文",
        "consent text",
        False,
        "我已了解理疗的目的、方法及风险，自愿接受治疗。",
    ),
    Column("record_template", "治疗记录模板", "record template (JSON)", False, ""),
    Column("assessment_template", "评估模板", "assessment template (JSON)", False, ""),
    Column("followup_rule", "随访规则", "follow-up rule (JSON)", False, ""),
    Column("active", "启用", "active", False, "是"),
]
KEY_COLUMN = "code"
FIELDS = {
    "name": "name",
    "durationMinutes": "duration",
    "price": "price",
    "record_template": "record_template",
    "assessment_template": "assessment_template",
    "body": "consent_body",
}


def _json(value: Any, key: str, kind: type) -> Any:
    raw = text(value, key, max_length=20000)
    if not raw:
        return None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise FieldError(key, f"不是有效的 JSON / not valid JSON: {exc}") from None
    if not isinstance(data, kind):
        raise FieldError(key, "JSON 结构不对 / wrong JSON shape")
    return data


def parse(values: dict[str, Any]) -> dict[str, Any]:
    price_text = text(values.get("price"), "price") or "0"
    try:
        price = Decimal(price_text)
    except InvalidOperation:
        raise FieldError("price", f"应为金额 / not an amount: {price_text}") from None
    if price < 0 or price != price.quantize(Decimal("0.01")):
        raise FieldError("price", f"金额须为非负且最多两位小数 / at most 2 decimals: {price_text}")
    record: dict[str, Any] = {
        "code": text(values.get("code"), "code", required=True, max_length=40),
        "department": text(values.get("department"), "department", max_length=40),
        "consent_title": text(values.get("consent_title"), "consent_title", max_length=200),
        "consent_body": text(values.get("consent_body"), "consent_body", max_length=20000),
        "values": {
            "name": text(values.get("name"), "name", required=True, max_length=100),
            "name_en": text(values.get("name_en"), "name_en", max_length=100),
            "duration_minutes": integer(values.get("duration"), "duration", default=30),
            "price_cents": int(price * 100),
            "notes": text(values.get("notes"), "notes", max_length=2000),
            "requires_consent": boolean(
                values.get("requires_consent"), "requires_consent", default=True
            ),
            "is_active": boolean(values.get("active"), "active", default=True),
        },
    }
    for key, kind in (
        ("record_template", list),
        ("assessment_template", list),
        ("followup_rule", dict),
    ):
        data = _json(values.get(key), key, kind)
        if data is not None:
            record["values"][key] = data
    return record


def key(record: dict[str, Any]) -> str:
    return str(record["code"])


async def apply(ctx: ImportContext, record: dict[str, Any]) -> Outcome:
    values = dict(record["values"])
    values["department_id"] = None
    if record["department"]:
        dept = (
            await ctx.session.execute(
                sa.select(Department).where(Department.code == record["department"])
            )
        ).scalar_one_or_none()
        if dept is None:
            raise FieldError(
                "department", f"科室不存在 / no such department: {record['department']}"
            )
        values["department_id"] = dept.id
    consent = None
    if record["consent_body"]:
        title = record["consent_title"] or f"{values['name']}治疗知情同意书 / consent"
        consent = (title, record["consent_body"])
    item, outcome = await save_item(
        ctx.session, code=record["code"], values=values, actor=ctx.actor, consent=consent
    )
    action = {"created": CREATE, "updated": UPDATE}.get(outcome, UNCHANGED)
    return Outcome(action, f"{item.code} {item.name}")
