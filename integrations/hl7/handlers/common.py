"""What several handlers read the same way: orders, doctors, payment status."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.domain.treatments.orders import order_by_his_no
from api.models.people import User
from api.models.treatments import TreatmentOrder
from integrations.hl7.handlers import HandlerContext, MessageError, unknown_key
from integrations.hl7.parse import InboundMessage


def item_code(ctx: HandlerContext, his_code: str, segment: str, field: int) -> str:
    """Our treatment item for an HIS order/charge code (configuration, else the code itself)."""
    if not his_code:
        raise MessageError(
            "101", "缺少项目代码 / the item code is required", segment=segment, field=field
        )
    return ctx.config.mapping.item_codes.get(his_code, his_code)


async def ordering_doctor(session: AsyncSession, ctx: HandlerContext, his_id: str) -> int | None:
    """The user behind an XCN id: the configured mapping, else a username equal to the id."""
    if not his_id:
        return None
    username = ctx.config.mapping.doctors.get(his_id, his_id)
    return (
        await session.execute(sa.select(User.id).where(User.username == username))
    ).scalar_one_or_none()


def doctor_name(msg: InboundMessage, segment: object, field: int) -> str | None:
    family, given = msg.value(segment, field, 2), msg.value(segment, field, 3)  # type: ignore[arg-type]
    name = (
        family + given
        if not (family.isascii() and given.isascii())
        else " ".join(p for p in (given, family) if p)
    )
    return name[:100] or None


def payment_value(ctx: HandlerContext, raw: str) -> str | None:
    """The HIS's payment value mapped to paid | unpaid | refunded (None: nothing said)."""
    if not raw:
        return None
    status = ctx.config.mapping.payment.values.get(raw.strip().upper())
    if status is None:
        raise MessageError(
            "103", "无法识别的缴费状态 / unknown payment status value", segment="", field=None
        )
    return status


async def order_for_number(
    session: AsyncSession, number: str, segment: str, field: int
) -> TreatmentOrder:
    order = await order_by_his_no(session, number) if number else None
    if order is None:
        raise unknown_key("医嘱不存在 / unknown order number", segment, field)
    return order


def orc_payment(ctx: HandlerContext, msg: InboundMessage, orc: object) -> str | None:
    """ORC-25 Order Status Modifier (CWE, HL7 v2.5 §4.5.1.25), where many HIS put 收费状态."""
    if "orc25" not in ctx.config.mapping.payment.sources:
        return None
    return payment_value(ctx, msg.value(orc, 25, 1))  # type: ignore[arg-type]


def ft1_payment(ctx: HandlerContext, msg: InboundMessage, ft1: object) -> str | None:
    """FT1-6 Transaction Type (IS, table 0017, HL7 v2.5 §6.5.1.6): a payment or refund row."""
    payment = ctx.config.mapping.payment
    if "ft1" not in payment.sources:
        return None
    kind = msg.value(ft1, 6).upper()  # type: ignore[arg-type]
    if kind in payment.ft1_payment_types:
        return "paid"
    if kind in payment.ft1_refund_types:
        return "refunded"
    return None  # CG (charge), AJ (adjustment) say nothing about payment


def z_payment(ctx: HandlerContext, msg: InboundMessage, z: object) -> str | None:
    payment = ctx.config.mapping.payment
    if "zsegment" not in payment.sources or str(z[0]) != payment.z_segment:  # type: ignore[index]
        return None
    return payment_value(ctx, msg.value(z, payment.z_field, 1))  # type: ignore[arg-type]
