"""ORM^O01 and OMG^O19: treatment orders (医嘱) from the HIS.

Each ORC starts an order: ORC-1 is the order control (NW new, CA/OC/DC cancel), ORC-2 the
placer order number (our `his_order_no`), ORC-12 the ordering doctor. The OBR after it
names the item (OBR-4) and the quantity comes from TQ1-2, ORC-7 or OBR-27 (which one a
HIS fills varies). Payment status on a new order is read where the mapping says.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.domain.treatments.orders import cancel_order, create_order
from integrations.hl7.handlers import HandlerContext, MessageError, handles, missing
from integrations.hl7.handlers.adt import find_patient
from integrations.hl7.handlers.common import (
    doctor_name,
    item_code,
    order_for_number,
    ordering_doctor,
    payment_value,
)
from integrations.hl7.parse import InboundMessage

NEW = ("NW", "SN")
CANCEL = ("CA", "OC", "DC", "OD")


def order_groups(msg: InboundMessage) -> list[dict[str, Any]]:
    """ORC with the OBR / TQ1 / Z-segments that follow it, in message order."""
    groups: list[dict[str, Any]] = []
    for segment in msg.message:
        name = str(segment[0])
        if name == "ORC":
            groups.append({"ORC": segment})
        elif groups and name in ("OBR", "TQ1") and name not in groups[-1]:
            groups[-1][name] = segment
        elif groups and name.startswith("Z"):
            groups[-1].setdefault("Z", []).append(segment)
    return groups


def quantity(msg: InboundMessage, group: dict[str, Any]) -> int:
    for segment, field in ((group.get("TQ1"), 2), (group.get("ORC"), 7), (group.get("OBR"), 27)):
        raw = msg.value(segment, field, 1) if segment is not None else ""
        if raw:
            try:
                value = float(raw)
            except ValueError:
                raise MessageError(
                    "102",
                    "数量格式错误 / the quantity is not a number",
                    segment="TQ1" if field == 2 else "ORC",
                    field=field,
                ) from None
            if value != int(value) or value < 1:
                raise MessageError(
                    "102",
                    "数量须为正整数 / the quantity must be a whole number of sessions",
                    segment="ORC",
                    field=7,
                )
            return int(value)
    raise missing(
        "缺少治疗次数 / the quantity (sessions) is required: TQ1-2, ORC-7 or OBR-27", "ORC", 7
    )


def order_payment(ctx: HandlerContext, msg: InboundMessage, group: dict[str, Any]) -> str | None:
    payment = ctx.config.mapping.payment
    if payment.source == "orc25":
        return payment_value(ctx, msg.value(group["ORC"], 25, 1))
    if payment.source == "zsegment":
        for z in group.get("Z", []) + msg.segments(payment.z_segment):
            if str(z[0]) == payment.z_segment:
                return payment_value(ctx, msg.value(z, payment.z_field, 1))
    return None  # FT1 rows come in DFT messages


@handles(("ORM", "O01"), ("OMG", "O19"))
async def apply_order(
    session: AsyncSession, ctx: HandlerContext, msg: InboundMessage
) -> dict[str, Any]:
    patient = await find_patient(session, msg, ctx)
    groups = order_groups(msg)
    if not groups:
        raise missing("缺少 ORC 段 / an ORC segment is required", "ORC", 1)
    created, cancelled = [], []
    for group in groups:
        orc, obr = group["ORC"], group.get("OBR")
        control = msg.value(orc, 1).upper()
        number = msg.value(orc, 2) or msg.value(obr, 2)
        if not number:
            raise missing("缺少医嘱号 / ORC-2 placer order number is required", "ORC", 2)
        if control in CANCEL:
            order = await order_for_number(session, number, "ORC", 2)
            if order.patient_id != patient.id:
                raise MessageError(
                    "204",
                    "医嘱不属于该患者 / the order belongs to another patient",
                    segment="ORC",
                    field=2,
                )
            await cancel_order(
                session, order, actor=ctx.actor, reason=msg.value(orc, 16, 2) or "HIS"
            )
            cancelled.append(order.id)
        elif control in NEW:
            if obr is None:
                raise missing("缺少 OBR 段 / an OBR segment is required for a new order", "OBR", 4)
            doctor_id = await ordering_doctor(
                session, ctx, msg.value(orc, 12) or msg.value(obr, 16)
            )
            doctor = doctor_name(msg, orc, 12) or doctor_name(msg, obr, 16)
            status = order_payment(ctx, msg, group) or "unpaid"
            order = await create_order(
                session,
                patient_id=patient.id,  # type: ignore[arg-type]
                item_code=item_code(ctx, msg.value(obr, 4), "OBR", 4),
                sessions=quantity(msg, group),
                payment_status=status,
                actor=ctx.actor,
                his_order_no=number,
                ordering_doctor_id=doctor_id,
                ordering_doctor_name=doctor,
                source="his",
            )
            created.append(order.id)
        else:
            raise MessageError(
                "103",
                f"不支持的医嘱控制码 / unsupported order control {control[:2]!r}",
                segment="ORC",
                field=1,
            )
    return {"created": ",".join(map(str, created)), "cancelled": ",".join(map(str, cancelled))}
