"""DFT^P03: charges and payments (确费, 退费) posted by the HIS.

DFT_P03 (HL7 v2.5 §6.4.1): MSH EVN PID [PV1] [{COMMON_ORDER: ORC ...}] {FINANCIAL: FT1
[{FINANCIAL_PROCEDURE}] [{FINANCIAL_COMMON_ORDER: ORC ...}]} ... So an ORC before the first
FT1 is the message's order, an ORC after an FT1 is that row's own order.

Which order a row is about: the placer order number first (the row's ORC-2, else the
message's ORC-2), the HIS's own number; FT1-23 (Filler Order Number, EI, §6.5.1.23) only
when no ORC says it. Payment status comes from the mapping's `payment.sources`:
FT1-6 payment / refund types, ORC-25, a Z-segment.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.domain.treatments.orders import set_payment_status
from integrations.hl7.handlers import HandlerContext, MessageError, handles, missing
from integrations.hl7.handlers.adt import find_patient
from integrations.hl7.handlers.common import (
    ft1_payment,
    orc_payment,
    order_for_number,
    z_payment,
)
from integrations.hl7.parse import InboundMessage


def financial_rows(msg: InboundMessage) -> tuple[Any, list[dict[str, Any]]]:
    """(the message's ORC or None, [{FT1, ORC}] per financial group) in message order."""
    common: Any = None
    rows: list[dict[str, Any]] = []
    for segment in msg.message:
        name = str(segment[0])
        if name == "FT1":
            rows.append({"FT1": segment, "ORC": None, "Z": []})
        elif name == "ORC":
            if rows:
                rows[-1]["ORC"] = rows[-1]["ORC"] or segment
            elif common is None:
                common = segment
        elif name.startswith("Z") and rows:
            rows[-1]["Z"].append(segment)
    return common, rows


def payment_changes(ctx: HandlerContext, msg: InboundMessage) -> list[tuple[str, str, str, int]]:
    """(order number, status, segment, field) in message order."""
    common, rows = financial_rows(msg)
    changes: list[tuple[str, str, str, int]] = []
    for row in rows:
        ft1, orc = row["FT1"], row["ORC"]
        if orc is not None and msg.value(orc, 2):
            number, where = msg.value(orc, 2), ("ORC", 2)
        elif common is not None and msg.value(common, 2):
            number, where = msg.value(common, 2), ("ORC", 2)
        else:
            number, where = msg.value(ft1, 23), ("FT1", 23)
        statuses = [
            ft1_payment(ctx, msg, ft1),
            orc_payment(ctx, msg, orc if orc is not None else common)
            if (orc if orc is not None else common) is not None
            else None,
            *(z_payment(ctx, msg, z) for z in row["Z"]),
        ]
        for status in statuses:
            if status:
                changes.append((number, status, *where))
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
                "缺少医嘱号 / the order number is required (ORC-2, or FT1-23)", segment, field
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
