"""ORM^O01 and OMG^O19: treatment orders (医嘱) from the HIS.

Each ORC starts an order group (HL7 v2.5 §4.4.1 ORM_O01 ORDER, §4.4.8 OMG_O19 ORDER): the
ORC, then its TQ1 (timing), OBR (the service), Z-segments and FT1 rows (both structures
allow FT1 inside the order group). ORC-1 is the order control (table 0119): NW new, CA /
OC / DC / OD cancel, SC status changed, XO change order. ORC-2 is the placer order
number (our `his_order_no`), ORC-12 the ordering doctor, OBR-4 the item.

The number of sessions is the total number of occurrences: TQ1-14 (v2.5), else TQ.12 of
ORC-7 or OBR-27 (the TQ data type of v2.3/2.4), else a count `X<n>` in TQ.3 (duration,
`X10` = ten times). TQ1-2 / TQ.1 is the quantity given at each occurrence, not a count.

Payment is read on every order control from ORC-25 and from the group's FT1 rows (and a
Z-segment), as the mapping's `payment.sources` say.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.domain.treatments.orders import (
    cancel_order,
    change_order,
    create_order,
    set_payment_status,
)
from api.models.patients import Patient
from api.models.treatments import TreatmentOrder
from integrations.hl7.handlers import HandlerContext, MessageError, handles, missing
from integrations.hl7.handlers.adt import patient_for_order
from integrations.hl7.handlers.common import (
    doctor_name,
    ft1_payment,
    item_code,
    orc_payment,
    order_for_number,
    ordering_doctor,
    z_payment,
)
from integrations.hl7.parse import InboundMessage

NEW = ("NW", "SN")
CANCEL = ("CA", "OC", "DC", "OD")
STATUS_CHANGED = "SC"
CHANGE = "XO"
# ORC-5 Order Status (table 0038) values that end an order told by SC.
ENDED_STATUSES = ("CA", "DC")
COUNT = re.compile(r"^X(\d+)$", re.IGNORECASE)


def order_groups(msg: InboundMessage) -> list[dict[str, Any]]:
    """ORC with the OBR / TQ1 / FT1 / Z-segments that follow it, in message order."""
    groups: list[dict[str, Any]] = []
    for segment in msg.message:
        name = str(segment[0])
        if name == "ORC":
            groups.append({"ORC": segment, "FT1": [], "Z": []})
        elif groups and name in ("OBR", "TQ1") and name not in groups[-1]:
            groups[-1][name] = segment
        elif groups and name == "FT1":
            groups[-1]["FT1"].append(segment)
        elif groups and name.startswith("Z"):
            groups[-1]["Z"].append(segment)
    return groups


def _whole(raw: str, segment: str, field: int) -> int:
    try:
        value = float(raw)
    except ValueError:
        raise MessageError(
            "102",
            "治疗次数格式错误 / the total occurrences is not a number",
            segment=segment,
            field=field,
        ) from None
    if value != int(value) or value < 1:
        raise MessageError(
            "102",
            "治疗次数须为正整数 / the total occurrences must be a whole number of sessions",
            segment=segment,
            field=field,
        )
    return int(value)


def quantity(msg: InboundMessage, group: dict[str, Any]) -> int:
    """The number of sessions the order is for (see the module's docstring)."""
    tq1 = group.get("TQ1")
    if tq1 is not None and (raw := msg.value(tq1, 14)):
        return _whole(raw, "TQ1", 14)  # TQ1-14 Total Occurrences (NM), v2.5 §4.5.4.14
    for name, field in (("ORC", 7), ("OBR", 27)):
        segment = group.get(name)
        if segment is None:
            continue
        if raw := msg.value(segment, field, 12):  # TQ.12 Total Occurrences (NM)
            return _whole(raw, name, field)
        if match := COUNT.match(msg.value(segment, field, 3)):  # TQ.3 Duration, X<n> times
            return _whole(match.group(1), name, field)
    raise missing(
        "缺少治疗次数 / the total occurrences is required: TQ1-14, ORC-7.12 (TQ.12) or a count"
        " X<n> in ORC-7.3",
        "TQ1",
        14,
    )


def total_or_none(msg: InboundMessage, group: dict[str, Any]) -> int | None:
    try:
        return quantity(msg, group)
    except MessageError as exc:
        if exc.code == "101":
            return None
        raise


def group_payment(ctx: HandlerContext, msg: InboundMessage, group: dict[str, Any]) -> str | None:
    """The last payment status the group says (ORC-25, then its FT1 rows, then Z)."""
    status = orc_payment(ctx, msg, group["ORC"])
    for ft1 in group["FT1"]:
        status = ft1_payment(ctx, msg, ft1) or status
    for z in group["Z"] + [s for s in msg.segments(ctx.config.mapping.payment.z_segment)]:
        status = z_payment(ctx, msg, z) or status
    return status


def own_order(order: TreatmentOrder, patient: Patient) -> TreatmentOrder:
    if order.patient_id != patient.id:
        raise MessageError(
            "204",
            "医嘱不属于该患者 / the order belongs to another patient",
            segment="ORC",
            field=2,
        )
    return order


@handles(("ORM", "O01"), ("OMG", "O19"))
async def apply_order(
    session: AsyncSession, ctx: HandlerContext, msg: InboundMessage
) -> dict[str, Any]:
    groups = order_groups(msg)
    if not groups:
        raise missing("缺少 ORC 段 / an ORC segment is required", "ORC", 1)
    patient, patient_created = await patient_for_order(session, msg, ctx)
    created, cancelled, changed, paid = [], [], [], []
    for group in groups:
        orc, obr = group["ORC"], group.get("OBR")
        control = msg.value(orc, 1).upper()
        number = msg.value(orc, 2) or msg.value(obr, 2)
        if not number:
            raise missing("缺少医嘱号 / ORC-2 placer order number is required", "ORC", 2)
        status = group_payment(ctx, msg, group)
        if control in NEW:
            if obr is None:
                raise missing("缺少 OBR 段 / an OBR segment is required for a new order", "OBR", 4)
            doctor_id = await ordering_doctor(
                session, ctx, msg.value(orc, 12) or msg.value(obr, 16)
            )
            order = await create_order(
                session,
                patient_id=patient.id,  # type: ignore[arg-type]
                item_code=item_code(ctx, msg.value(obr, 4), "OBR", 4),
                sessions=quantity(msg, group),
                payment_status=status or "unpaid",
                actor=ctx.actor,
                his_order_no=number,
                ordering_doctor_id=doctor_id,
                ordering_doctor_name=doctor_name(msg, orc, 12) or doctor_name(msg, obr, 16),
                source="his",
            )
            own_order(order, patient)
            created.append(order.id)
            if status and order.payment_status != status:
                # The order existed (a resend under a new control id): the payment applies.
                await set_payment_status(session, order, status, actor=ctx.actor, source="his")
            continue
        order = own_order(await order_for_number(session, number, "ORC", 2), patient)
        if control in CANCEL or (
            control == STATUS_CHANGED and msg.value(orc, 5).upper() in ENDED_STATUSES
        ):
            await cancel_order(
                session, order, actor=ctx.actor, reason=msg.value(orc, 16, 2) or "HIS"
            )
            cancelled.append(order.id)
        elif control == CHANGE:
            sessions = total_or_none(msg, group)
            if sessions is not None:  # an XO that changes something else leaves the count
                await change_order(
                    session,
                    order,
                    sessions=sessions,
                    actor=ctx.actor,
                    reason=msg.value(orc, 16, 2) or None,
                )
                changed.append(order.id)
        elif control != STATUS_CHANGED:
            raise MessageError(
                "103",
                f"不支持的医嘱控制码 / unsupported order control {control[:2]!r}",
                segment="ORC",
                field=1,
            )
        if status:
            await set_payment_status(session, order, status, actor=ctx.actor, source="his")
            paid.append(f"{order.id}:{status}")
    return {
        "created": ",".join(map(str, created)),
        "cancelled": ",".join(map(str, cancelled)),
        "changed": ",".join(map(str, changed)),
        "payments": ",".join(paid),
        "patient_created": patient_created,
    }
