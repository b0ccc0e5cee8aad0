"""Schedules (排班): item, therapist and/or room, weekdays, hours, slot length, capacity
and the dates they hold. A row is the same schedule as one in the database when item,
therapist, room, start time and first day match; its other columns update it.

Slots are generated from the schedules by `bedside treatments sweep` (the rolling window).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from api.domain.imports.base import CREATE, UNCHANGED, UPDATE, ImportContext, Outcome
from api.domain.imports.table import Column, FieldError, boolean, clock, day, integer, text, words
from api.domain.treatments.common import item_by_code
from api.domain.treatments.schedules import create_schedule, update_schedule
from api.models.people import User
from api.models.treatments import Schedule

TITLE = "排班 schedules"
COLUMNS = [
    Column("item", "项目编码", "item code", True, "PHYSIO", "先导入治疗项目 / import items first"),
    Column("therapist", "治疗师用户名", "therapist", False, "pt.sun", "治疗师或治疗室至少填一项"),
    Column("room", "治疗室", "room", False, "理疗室1"),
    Column("weekdays", "星期", "weekdays", True, "1,2,3,4,5", "1=周一 … 7=周日，或 一,三,五"),
    Column("start", "开始时间", "start", True, "08:00"),
    Column("end", "结束时间", "end", True, "12:00"),
    Column("slot_minutes", "时段(分钟)", "slot minutes", True, "30"),
    Column("capacity", "容量", "capacity", True, "2", "每个时段可预约人数 / bookings per slot"),
    Column("valid_from", "起始日期", "valid from", True, "2026-01-05"),
    Column("valid_to", "结束日期", "valid to", False, "2026-02-04"),
    Column(
        "working_days_only",
        "仅工作日",
        "working days only",
        False,
        "是",
        "跳过法定节假日 / skip public holidays",
    ),
]
KEY_COLUMN = "start"
FIELDS = {
    "startTime": "start",
    "endTime": "end",
    "slotMinutes": "slot_minutes",
    "capacity": "capacity",
    "weekdays": "weekdays",
    "validTo": "valid_to",
    "therapistId": "therapist",
    "room": "room",
    "itemCode": "item",
}
WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}


def _weekdays(value: Any) -> list[int]:
    days = []
    for word in words(value):
        word = word.removeprefix("周").removeprefix("星期")
        if word in WEEKDAYS:
            days.append(WEEKDAYS[word])
        elif word.isdigit() and 1 <= int(word) <= 7:
            days.append(int(word) - 1)
        elif "-" in word and all(p.isdigit() for p in word.split("-", 1)):
            first, last = (int(p) for p in word.split("-", 1))
            if not 1 <= first <= last <= 7:
                raise FieldError("weekdays", f"星期应为 1-7 / weekdays are 1-7: {word}")
            days.extend(range(first - 1, last))
        else:
            raise FieldError("weekdays", f"星期应为 1-7 或 一…日 / weekdays are 1-7: {word}")
    if not days:
        raise FieldError("weekdays", "必填 / required")
    return sorted(set(days))


def parse(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "item": text(values.get("item"), "item", required=True, max_length=40),
        "therapist": text(values.get("therapist"), "therapist", max_length=80),
        "room": text(values.get("room"), "room", max_length=60),
        "weekdays": _weekdays(values.get("weekdays")),
        "start": clock(values.get("start"), "start", required=True),
        "end": clock(values.get("end"), "end", required=True),
        "slot_minutes": integer(values.get("slot_minutes"), "slot_minutes", required=True),
        "capacity": integer(values.get("capacity"), "capacity", required=True),
        "valid_from": day(values.get("valid_from"), "valid_from", required=True),
        "valid_to": day(values.get("valid_to"), "valid_to"),
        "working_days_only": boolean(
            values.get("working_days_only"), "working_days_only", default=True
        ),
    }


def key(record: dict[str, Any]) -> tuple[Any, ...]:
    return (
        record["item"],
        record["therapist"],
        record["room"],
        record["start"],
        record["valid_from"],
    )


async def apply(ctx: ImportContext, record: dict[str, Any]) -> Outcome:
    session = ctx.session
    what = (
        f"{record['item']} {record['therapist'] or record['room']} "
        f"{record['start']}-{record['end']} from {record['valid_from']}"
    )
    item = await item_by_code(session, record["item"], field="itemCode")
    therapist_id = None
    if record["therapist"]:
        therapist_id = (
            await session.execute(
                sa.select(col(User.id)).where(col(User.username) == record["therapist"])
            )
        ).scalar_one_or_none()
        if therapist_id is None:
            raise FieldError("therapist", f"用户不存在 / no such user: {record['therapist']}")
    existing = (
        await session.execute(
            sa.select(Schedule).where(
                col(Schedule.item_id) == item.id,
                col(Schedule.therapist_id).is_(None)
                if therapist_id is None
                else col(Schedule.therapist_id) == therapist_id,
                Schedule.room == record["room"],
                Schedule.start_time == record["start"],
                Schedule.valid_from == record["valid_from"],
            )
        )
    ).scalar_one_or_none()
    pattern = {
        "end_time": record["end"],
        "weekdays": record["weekdays"],
        "slot_minutes": record["slot_minutes"],
        "capacity": record["capacity"],
        "valid_to": record["valid_to"],
        "working_days_only": record["working_days_only"],
    }
    if existing is None:
        await create_schedule(
            session,
            item_code=record["item"],
            start_time=record["start"],
            valid_from=record["valid_from"],
            therapist_id=therapist_id,
            room=record["room"],
            actor=ctx.actor,
            **pattern,
        )
        return Outcome(CREATE, what)
    changes = await update_schedule(session, existing, actor=ctx.actor, **pattern)
    return Outcome(UPDATE if changes else UNCHANGED, what, sorted(changes))
