"""The surgery catalog (手术分级目录): ICD-9-CM-3 code, name, grade 1-4, catalog level.

A hospital starts from the national grading catalog and adds its own entries. The
domain keeps one row per code (privileges are granted by grade, so an entry changes in
place); a code left out of the file stays as it is — set 启用 to 否 to retire it.
"""

from __future__ import annotations

import re
from typing import Any

from api.domain import privileges
from api.domain.imports.base import CREATE, UNCHANGED, UPDATE, ImportContext, Outcome
from api.domain.imports.table import Column, FieldError, boolean, text

TITLE = "手术目录 surgery catalog"
COLUMNS = [
    Column("code", "手术编码", "ICD-9-CM-3 code", True, "51.23", "ICD-9-CM-3 编码，如 51.23"),
    Column("name", "手术名称", "name", True, "腹腔镜胆囊切除术"),
    Column("name_en", "英文名称", "English name", False, "Laparoscopic cholecystectomy"),
    Column("grade", "手术级别", "grade", True, "3", "1-4 或 一级/二级/三级/四级"),
    Column("level", "目录级别", "catalog level", False, "国家级", "国家级/省级/院级 (默认院级)"),
    Column("active", "启用", "active", False, "是", "是/否 (默认是)"),
]
KEY_COLUMN = "code"
FIELDS = {"grade": "grade", "level": "level"}
GRADES = {"一级": 1, "二级": 2, "三级": 3, "四级": 4, "1": 1, "2": 2, "3": 3, "4": 4}
LEVELS = {
    "国家级": "national",
    "省级": "provincial",
    "院级": "hospital",
    "national": "national",
    "provincial": "provincial",
    "hospital": "hospital",
}
CODE = re.compile(r"\d{2}(\.\d{1,4})?(x\d{3})?", re.IGNORECASE)


def parse(values: dict[str, Any]) -> dict[str, Any]:
    code = text(values.get("code"), "code", required=True, max_length=40)
    if not CODE.fullmatch(code):
        raise FieldError("code", f"不是 ICD-9-CM-3 编码 / not an ICD-9-CM-3 code: {code}")
    raw_grade = text(values.get("grade"), "grade", required=True).removesuffix("手术")
    if raw_grade not in GRADES:
        raise FieldError("grade", f"手术级别应为1-4 / grade must be 1-4: {raw_grade}")
    raw_level = text(values.get("level"), "level") or "院级"
    if raw_level.lower() not in LEVELS:
        raise FieldError("level", f"目录级别应为 国家级/省级/院级 / unknown level: {raw_level}")
    return {
        "code": code,
        "name": text(values.get("name"), "name", required=True),
        "name_en": text(values.get("name_en"), "name_en"),
        "grade": GRADES[raw_grade],
        "level": LEVELS[raw_level.lower()],
        "active": boolean(values.get("active"), "active", default=True),
    }


def key(record: dict[str, Any]) -> str:
    return str(record["code"]).lower()


async def prepare(ctx: ImportContext) -> None:
    rows = await privileges.catalog(ctx.session, include_inactive=True)
    ctx.cache["procedures"] = {p.code: p for p in rows}


async def apply(ctx: ImportContext, record: dict[str, Any]) -> Outcome:
    what = f"{record['code']} {record['name']} ({record['grade']})"
    existing = ctx.cache["procedures"].get(record["code"])
    changes = (
        [
            k
            for k in ("name", "name_en", "grade", "level", "active")
            if getattr(existing, k) != record[k]
        ]
        if existing is not None
        else None
    )
    if changes == []:
        return Outcome(UNCHANGED, what)
    await privileges.upsert_procedure(ctx.session, **record, actor=ctx.actor)
    return Outcome(CREATE if existing is None else UPDATE, what, changes or [])
