"""SIU^S12 (new booking) and SIU^S15 (cancellation) when the HIS books our treatments.

SCH-1 is the HIS's appointment id (kept in `hl7_appointment_link`, so a later S15 finds
the appointment and the sender does not echo the booking back), SCH-26 the order, AIS-3
the item, AIS-4 (or TQ1-7, or SCH-11.4) the start, AIP-3 the therapist. The HIS books
an existing slot of ours; capacity and payment rules are the booking service's.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.domain.treatments.appointments import book_appointment, cancel_appointment
from api.domain.treatments.common import item_by_code
from api.models.base import utcnow
from api.models.hl7 import HL7AppointmentLink
from api.models.treatments import Appointment, BookingChannel, Slot, TreatmentOrder
from integrations.hl7.handlers import HandlerContext, MessageError, handles, missing, unknown_key
from integrations.hl7.handlers.adt import find_patient
from integrations.hl7.handlers.common import item_code, order_for_number, ordering_doctor
from integrations.hl7.parse import InboundMessage, parse_hl7_datetime


def his_appointment_id(msg: InboundMessage) -> str:
    sch = msg.segment("SCH")
    value = msg.value(sch, 1) or msg.value(sch, 2)
    if not value:
        raise missing("缺少预约号 / SCH-1 placer appointment id is required", "SCH", 1)
    return value[:80]


def start_time(msg: InboundMessage, ctx: HandlerContext) -> Any:
    candidates = (
        (msg.segment("AIS"), 4, 1),
        (msg.segment("TQ1"), 7, 1),
        (msg.segment("SCH"), 11, 4),
    )
    for segment, field, component in candidates:
        raw = msg.value(segment, field, component)
        if raw:
            try:
                return parse_hl7_datetime(raw, ctx.services.settings.tz)
            except ValueError:
                raise MessageError(
                    "102",
                    "预约时间格式错误 / the start time is not an HL7 timestamp",
                    segment="AIS",
                    field=4,
                ) from None
    raise missing("缺少预约时间 / the start time is required (AIS-4)", "AIS", 4)


async def link_for(session: AsyncSession, his_id: str) -> HL7AppointmentLink | None:
    return (
        await session.execute(
            sa.select(HL7AppointmentLink).where(HL7AppointmentLink.his_appointment_id == his_id)
        )
    ).scalar_one_or_none()


async def mark_reported(
    session: AsyncSession, appointment: Appointment, his_id: str | None = None
) -> None:
    """What the HIS told us, the HIS knows: the sender skips this version."""
    assert appointment.id is not None
    link = await session.get(HL7AppointmentLink, appointment.id)
    if link is None:
        link = HL7AppointmentLink(appointment_id=appointment.id)
        session.add(link)
    if his_id:
        link.his_appointment_id = his_id
    link.reported_version = appointment.version
    link.reported_status = appointment.status
    link.reported_starts_at = appointment.starts_at
    link.updated_at = utcnow()
    await session.flush()


async def choose_order(
    session: AsyncSession, msg: InboundMessage, patient_id: int, item_id: int
) -> TreatmentOrder:
    number = msg.value(msg.segment("SCH"), 26)
    if number:
        order = await order_for_number(session, number, "SCH", 26)
        if order.patient_id != patient_id:
            raise MessageError(
                "204",
                "医嘱不属于该患者 / the order belongs to another patient",
                segment="SCH",
                field=26,
            )
        return order
    order = (
        (
            await session.execute(
                sa.select(TreatmentOrder)
                .where(
                    TreatmentOrder.patient_id == patient_id,
                    TreatmentOrder.item_id == item_id,
                    TreatmentOrder.cancelled_at.is_(None),
                )
                .order_by(TreatmentOrder.id)
            )
        )
        .scalars()
        .first()
    )
    if order is None:
        raise unknown_key(
            "该患者没有此项目的医嘱 / no order of this patient for the item", "SCH", 26
        )
    return order


@handles(("SIU", "S12"))
async def apply_booking(
    session: AsyncSession, ctx: HandlerContext, msg: InboundMessage
) -> dict[str, Any]:
    his_id = his_appointment_id(msg)
    existing = await link_for(session, his_id)
    if existing is not None:
        return {"appointment_id": existing.appointment_id, "already_booked": True}
    patient = await find_patient(session, msg, ctx)
    ais = msg.segment("AIS")
    item = await item_by_code(session, item_code(ctx, msg.value(ais, 3), "AIS", 3), field="AIS-3")
    starts_at = start_time(msg, ctx)
    stmt = sa.select(Slot).where(
        Slot.item_id == item.id, Slot.starts_at == starts_at, Slot.cancelled_at.is_(None)
    )
    therapist_id = await ordering_doctor(session, ctx, msg.value(msg.segment("AIP"), 3))
    if therapist_id is not None:
        stmt = stmt.where(Slot.therapist_id == therapist_id)
    slots = list((await session.execute(stmt.order_by(Slot.remaining.desc(), Slot.id))).scalars())
    if not slots:
        raise unknown_key("该时间没有此项目的排班 / no slot of the item at that time", "AIS", 4)
    order = await choose_order(session, msg, patient.id, item.id)  # type: ignore[arg-type]
    appointment = await book_appointment(
        session, slots[0].id, actor=ctx.actor, order_id=order.id, channel=BookingChannel.HIS
    )  # type: ignore[arg-type]
    await mark_reported(session, appointment, his_id)
    return {"appointment_id": appointment.id}


@handles(("SIU", "S15"))
async def apply_cancellation(
    session: AsyncSession, ctx: HandlerContext, msg: InboundMessage
) -> dict[str, Any]:
    his_id = his_appointment_id(msg)
    link = await link_for(session, his_id)
    if link is None:
        raise unknown_key("预约不存在 / unknown appointment id", "SCH", 1)
    appointment = await session.get(Appointment, link.appointment_id)
    if appointment is None:
        raise unknown_key("预约不存在 / unknown appointment id", "SCH", 1)
    reason = msg.value(msg.segment("SCH"), 6, 2) or msg.value(msg.segment("SCH"), 6, 1) or "HIS"
    await cancel_appointment(session, appointment, actor=ctx.actor, reason=reason)
    await mark_reported(session, appointment)
    return {"appointment_id": appointment.id, "cancelled": True}
