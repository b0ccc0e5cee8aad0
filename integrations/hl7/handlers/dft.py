"""DFT^P03: charges and payments (确费, 退费) posted by the HIS.

Where payment status is read is configuration (`payment.source`):
- `ft1`: FT1 rows of a payment type (FT1-6 `PY`) mark the order paid, refund types
  (`RF`, `CR`) refunded; charge rows (`CG`) say nothing about payment;
- `orc25`: ORC-25 of the order's ORC carries the value;
- `zsegment`: a Z-segment (default `ZPY|<order number>|<status>`).
The order is FT1-23 (filler order number) or the ORC-2 before the FT1.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.domain.treatments.orders import set_payment_status
from integrations.hl7.handlers import HandlerContext, MessageError, handles, missing
from integrations.hl7.handlers.adt import find_patient
from integrations.hl7.handlers.common import order_for_number, payment_value
from integrations.hl7.parse import InboundMessage


def payment_changes(ctx: HandlerContext, msg: InboundMessage) -> list[tuple[str, str, str, int]]:
    """(order number, status, segment, field) in message order."""
    payment = ctx.config.mapping.payment
    changes: list[tuple[str, str, str, int]] = []
    current_order = ""
    for segment in msg.message:
        name = str(segment[0])
        if name == "ORC":
            current_order = msg.value(segment, 2)
            if payment.source == "orc25" and (
                status := payment_value(ctx, msg.value(segment, 25, 1))
            ):
                changes.append((current_order, status, "ORC", 2))
        elif name == "FT1" and payment.source == "ft1":
            kind = msg.value(segment, 6).upper()
            number = msg.value(segment, 23) or current_order
            if kind in payment.ft1_payment_types:
                changes.append((number, "paid", "FT1", 23))
            elif kind in payment.ft1_refund_types:
                changes.append((number, "refunded", "FT1", 23))
        elif name == payment.z_segment and payment.source == "zsegment":
            number = msg.value(segment, 1) or current_order
            if status := payment_value(ctx, msg.value(segment, payment.z_field, 1)):
                changes.append((number, status, name, 1))
    return changes


@handles(("DFT", "P03"))
async def apply_charges(
    session: AsyncSession, ctx: HandlerContext, msg: InboundMessage
) -> dict[str, Any]:
    patient = await find_patient(session, msg, ctx)
    if not msg.segments("FT1"):
        raise missing("缺少 FT1 段 / at least one FT1 segment is required", "FT1", 1)
    changed = []
    for number, status, segment, field in payment_changes(ctx, msg):
        if not number:
            raise missing(
                "缺少医嘱号 / the order number is required (FT1-23 or ORC-2)", segment, field
            )
        order = await order_for_number(session, number, segment, field)
        if order.patient_id != patient.id:
            raise MessageError(
                "204",
                "医嘱不属于该患者 / the order belongs to another patient",
                segment=segment,
                field=field,
            )
        await set_payment_status(session, order, status, actor=ctx.actor, source="his")
        changed.append(f"{order.id}:{status}")
    return {"payments": ",".join(changed), "charges": len(msg.segments("FT1"))}
