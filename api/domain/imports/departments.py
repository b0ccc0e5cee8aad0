"""Departments (科室): code, name, English name. Heads are set by the staff import."""

from __future__ import annotations

from typing import Any

from api.domain import people
from api.domain.imports.base import CREATE, UNCHANGED, UPDATE, ImportContext, Outcome
from api.domain.imports.table import Column, text

TITLE = "科室 departments"
COLUMNS = [
    Column("code", "科室编码", "code", True, "GS", "院内科室编码，唯一 / the hospital's own code"),
    Column("name", "科室名称", "name", True, "普外科"),
    Column("name_en", "英文名称", "English name", False, "General Surgery"),
]
KEY_COLUMN = "code"
FIELDS: dict[str, str] = {}


def parse(values: dict[str, Any]) -> dict[str, str]:
    return {
        "code": text(values.get("code"), "code", required=True, max_length=40),
        "name": text(values.get("name"), "name", required=True, max_length=100),
        "name_en": text(values.get("name_en"), "name_en", max_length=100),
    }


def key(record: dict[str, str]) -> str:
    return record["code"]


async def apply(ctx: ImportContext, record: dict[str, str]) -> Outcome:
    what = f"{record['code']} {record['name']}"
    dept = await people.department_by_code(ctx.session, record["code"])
    if dept is None:
        await people.create_department(ctx.session, **record, actor=ctx.actor)
        return Outcome(CREATE, what)
    changes = await people.update_department(
        ctx.session, dept, name=record["name"], name_en=record["name_en"], actor=ctx.actor
    )
    return Outcome(UPDATE if changes else UNCHANGED, what, sorted(changes))
