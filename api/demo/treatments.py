"""Demo treatments: 针灸, 理疗, 激光, 换药 with templates and consent texts, schedules and
slots for the next 14 days (working days, Asia/Shanghai), and patient.zhou's paid
physiotherapy order of 10 sessions. Idempotent: everything is looked up by natural key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import SYSTEM_ACTOR
from api.domain.treatments.orders import create_order
from api.domain.treatments.records import consent_text_sha256
from api.domain.treatments.schedules import create_schedule, generate_slots
from api.models.patients import Patient
from api.models.people import Department, User
from api.models.treatments import (
    ConsentText,
    PaymentStatus,
    Schedule,
    TreatmentItem,
    TreatmentOrder,
)
from api.services import Services

ORDER = 30

PAIN = {
    "name": "pain_score",
    "label": "疼痛评分 / pain (0-10)",
    "type": "int",
    "min": 0,
    "max": 10,
    "required": True,
}
REACTION = {
    "name": "reaction",
    "label": "不良反应 / adverse reaction",
    "type": "choice",
    "options": ["无 none", "轻微 mild", "明显 marked"],
    "required": True,
}
NOTE = {"name": "note", "label": "备注 / note", "type": "text", "max_length": 1000}
QUESTIONNAIRE = [
    {
        "name": "improved",
        "label": "症状是否改善 / symptoms improved",
        "type": "choice",
        "options": ["明显 much", "一般 some", "无 none"],
        "required": True,
    },
    {
        "name": "pain_score",
        "label": "目前疼痛评分 / pain now (0-10)",
        "type": "int",
        "min": 0,
        "max": 10,
        "required": True,
    },
    {"name": "comment", "label": "其他意见 / comments", "type": "text", "max_length": 500},
]

ITEMS: list[dict[str, Any]] = [
    {
        "code": "ACUP",
        "name": "针灸",
        "name_en": "Acupuncture",
        "duration_minutes": 30,
        "price_cents": 8000,
        "notes": "治疗前请勿空腹，穿宽松衣物 / do not come hungry; wear loose clothing",
        "location": "门诊楼3层 康复医学科（出电梯右转） / Outpatient Building, 3rd floor, Rehabilitation (right out of the lift)",
        "record_template": [
            {"name": "points", "label": "穴位 / acupoints", "type": "text", "required": True},
            {
                "name": "needles",
                "label": "针数 / needles",
                "type": "int",
                "min": 1,
                "max": 60,
                "required": True,
            },
            REACTION,
            NOTE,
        ],
        "assessment_template": [PAIN],
        "followup_rule": {"trigger": "course", "offset_days": [7], "questionnaire": QUESTIONNAIRE},
    },
    {
        "code": "PHYSIO",
        "name": "理疗",
        "name_en": "Physiotherapy",
        "duration_minutes": 30,
        "price_cents": 6000,
        "notes": "请提前 10 分钟到达康复科理疗室签到 / arrive 10 minutes early and check in at the physiotherapy room",
        "location": "门诊楼3层 康复医学科（出电梯右转） / Outpatient Building, 3rd floor, Rehabilitation (right out of the lift)",
        "record_template": [
            {
                "name": "modality",
                "label": "方式 / modality",
                "type": "choice",
                "options": ["中频 IF", "超声 ultrasound", "牵引 traction", "运动 exercise"],
                "required": True,
            },
            {
                "name": "minutes",
                "label": "时长(分钟) / minutes",
                "type": "int",
                "min": 5,
                "max": 120,
                "required": True,
            },
            REACTION,
            NOTE,
        ],
        "assessment_template": [
            PAIN,
            {
                "name": "rom",
                "label": "关节活动度(度) / range of motion (°)",
                "type": "int",
                "min": 0,
                "max": 180,
            },
        ],
        "followup_rule": {
            "trigger": "course",
            "offset_days": [7, 30],
            "questionnaire": QUESTIONNAIRE,
        },
    },
    {
        "code": "LASER",
        "name": "激光",
        "name_en": "Laser therapy",
        "duration_minutes": 20,
        "price_cents": 30000,
        "notes": "治疗后一周内避免日晒，不要化妆 / avoid sun and make-up for a week after",
        "location": "门诊楼3层 康复医学科（出电梯右转） / Outpatient Building, 3rd floor, Rehabilitation (right out of the lift)",
        "record_template": [
            {
                "name": "wavelength_nm",
                "label": "波长(nm) / wavelength",
                "type": "int",
                "min": 200,
                "max": 11000,
                "required": True,
            },
            {
                "name": "energy_j",
                "label": "能量(J/cm²) / fluence",
                "type": "number",
                "min": 0,
                "max": 100,
                "required": True,
            },
            {"name": "area", "label": "部位 / area", "type": "text", "required": True},
            REACTION,
        ],
        "assessment_template": [
            {
                "name": "skin",
                "label": "皮肤反应 / skin reaction",
                "type": "choice",
                "options": ["正常 normal", "红斑 erythema", "水疱 blister"],
                "required": True,
            }
        ],
        "followup_rule": {"trigger": "session", "offset_days": [3], "questionnaire": QUESTIONNAIRE},
    },
    {
        "code": "DRESS",
        "name": "换药",
        "name_en": "Wound dressing",
        "duration_minutes": 15,
        "price_cents": 2500,
        "notes": "保持伤口干燥，如有渗出及时就诊 / keep the wound dry; come back if it oozes",
        "location": "门诊楼3层 康复医学科（出电梯右转） / Outpatient Building, 3rd floor, Rehabilitation (right out of the lift)",
        "record_template": [
            {
                "name": "wound",
                "label": "伤口情况 / wound",
                "type": "choice",
                "options": ["愈合良好 healing", "渗出 oozing", "感染 infected"],
                "required": True,
            },
            NOTE,
        ],
        "assessment_template": [],
        "requires_consent": False,
        "followup_rule": {},
    },
]

CONSENT = (
    "{name}治疗知情同意书 / {name_en} consent",
    "我已了解{name}治疗的目的、方法、可能的风险及注意事项，自愿接受治疗。\n"
    "I understand the purpose, method, possible risks and precautions of {name_en}, and consent to it.",
)

# item, therapist, room, weekdays, start, end, slot minutes, capacity
SCHEDULES = [
    ("PHYSIO", "pt.sun", "理疗室1 Physio 1", [0, 1, 2, 3, 4], "08:00", "12:00", 30, 2),
    ("PHYSIO", "pt.sun", "理疗室1 Physio 1", [0, 1, 2, 3, 4], "14:00", "17:00", 30, 2),
    ("ACUP", "chief.he", "针灸室 Acupuncture", [0, 2, 4], "09:00", "12:00", 30, 1),
    ("LASER", "pt.sun", "激光室 Laser", [1, 3], "14:00", "17:00", 20, 1),
    ("DRESS", None, "换药室 Dressing", [0, 1, 2, 3, 4], "08:00", "11:30", 15, 3),
]


async def seed(session: AsyncSession, services: Services) -> dict[str, int]:
    tz = services.settings.tz
    rehab = (
        await session.execute(sa.select(Department).where(Department.code == "REHAB"))
    ).scalar_one()
    users = {u.username: u for u in (await session.execute(sa.select(User))).scalars()}
    items: dict[str, TreatmentItem] = {}
    for spec in ITEMS:
        item = (
            await session.execute(
                sa.select(TreatmentItem).where(TreatmentItem.code == spec["code"])
            )
        ).scalar_one_or_none()
        if item is None:
            item = TreatmentItem(department_id=rehab.id, **spec)
            session.add(item)
            await session.flush()
            title, body = (part.format(name=item.name, name_en=item.name_en) for part in CONSENT)
            session.add(
                ConsentText(
                    item_id=item.id,
                    version=1,
                    title=title,
                    body=body,
                    sha256=consent_text_sha256(title, body),
                )
            )  # type: ignore[arg-type]
        items[item.code] = item
    today = datetime.now(tz).date()
    for code, therapist, room, weekdays, start, end, minutes, capacity in SCHEDULES:
        therapist_id = users[therapist].id if therapist else None
        existing = (
            await session.execute(
                sa.select(Schedule.id).where(
                    Schedule.item_id == items[code].id,
                    Schedule.room == room,
                    Schedule.start_time == start,
                )
            )
        ).first()
        if existing is None:
            await create_schedule(
                session,
                item_code=code,
                start_time=start,
                end_time=end,
                valid_from=today,
                actor=SYSTEM_ACTOR,
                therapist_id=therapist_id,
                room=room,
                weekdays=weekdays,
                slot_minutes=minutes,
                capacity=capacity,
            )
    await session.flush()
    slots = await generate_slots(session, start=today, days=14, tz=tz)

    orders = 0
    zhou = (await session.execute(sa.select(Patient).where(Patient.mrn == "P0001"))).scalar_one()
    has_order = (
        await session.execute(
            sa.select(TreatmentOrder.id).where(TreatmentOrder.his_order_no == "DEMO-P0001-PHYSIO")
        )
    ).first()
    if has_order is None:
        await create_order(
            session,
            patient_id=zhou.id,  # type: ignore[arg-type]
            item_code="PHYSIO",
            sessions=10,
            payment_status=PaymentStatus.PAID,
            actor=SYSTEM_ACTOR,
            his_order_no="DEMO-P0001-PHYSIO",
            ordering_doctor_name="何主任",
            source="his",
        )
        orders += 1
    return {"items": len(items), "slots created": slots, "orders created": orders}
