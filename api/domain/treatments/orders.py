"""Treatment orders (治疗医嘱) from the HIS or staff, merged into courses, and their payment.

The HL7 adapter and the admin GraphQL mutation both call these; an order from the HIS is
keyed by its HIS order number, so a replayed message returns the first order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import append_event, expected_stream_sources
from api.auth import Actor
from api.domain.treatments.access import log_patient_access
from api.domain.treatments.common import (
    TreatmentErrorCode,
    item_by_code,
    load_patient,
    now_or,
    require_treatment_staff,
)
from api.errors import DomainError, ErrorCode, invalid, not_found
from api.idempotency import recall, remember
from api.models.treatments import (
    ACTIVE_STATUSES,
    Appointment,
    PaymentStatus,
    TreatmentCourse,
    TreatmentOrder,
)

MAX_SESSIONS = 200


def order_stream(order_id: int) -> str:
    return f"treatment_order:{order_id}"


def remaining_sessions(order: TreatmentOrder) -> int:
    """Sessions not yet archived (what the patient still has on this order)."""
    return order.sessions - order.used_sessions


async def active_bookings(session: AsyncSession, order_id: int) -> int:
    stmt = sa.select(sa.func.count()).where(
        Appointment.order_id == order_id,
        Appointment.status.in_([str(s) for s in ACTIVE_STATUSES]),
        Appointment.deleted_at.is_(None),
    )
    return int((await session.execute(stmt)).scalar_one())


async def bookable_sessions(session: AsyncSession, order: TreatmentOrder) -> int:
    """Remaining sessions not already held by an upcoming appointment."""
    assert order.id is not None
    return remaining_sessions(order) - await active_bookings(session, order.id)


async def create_order(
    session: AsyncSession,
    *,
    patient_id: int,
    item_code: str,
    sessions: int,
    payment_status: PaymentStatus | str = PaymentStatus.UNPAID,
    actor: Actor,
    his_order_no: str | None = None,
    ordering_doctor_id: int | None = None,
    ordering_doctor_name: str | None = None,
    source: str = "admin",
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> TreatmentOrder:
    """Create an order; the same `his_order_no` (or idempotency key) returns the first one."""
    require_treatment_staff(actor)
    if his_order_no is not None:
        his_order_no = his_order_no.strip()
        if not his_order_no or len(his_order_no) > 64:
            raise invalid("hisOrderNo", "HIS 医嘱号无效 / invalid HIS order number")
        existing = (
            await session.execute(
                sa.select(TreatmentOrder).where(TreatmentOrder.his_order_no == his_order_no)
            )
        ).scalar_one_or_none()
        if existing is not None:
            # The first order, to whoever may see its patient; to anyone else: not there.
            await load_patient(session, actor, existing.patient_id)
            if existing.patient_id != patient_id:
                raise DomainError(
                    ErrorCode.CONFLICT,
                    "该 HIS 医嘱号已用于另一位患者 / this HIS order number belongs to another patient",
                    field="hisOrderNo",
                )
            return await _answered(session, actor, existing)
    first = await recall(session, "treatments.create_order", idempotency_key, actor=actor)
    if first:
        return await _answered(
            session, actor, await access_order(session, actor, int(first["order_id"]))
        )
    if not isinstance(sessions, int) or not 1 <= sessions <= MAX_SESSIONS:
        raise invalid(
            "sessions", f"次数须在 1-{MAX_SESSIONS} 之间 / sessions must be 1-{MAX_SESSIONS}"
        )
    status = _payment_status(payment_status)
    item = await item_by_code(session, item_code)
    patient = await load_patient(session, actor, patient_id)
    now = now_or(now)
    order = TreatmentOrder(
        his_order_no=his_order_no,
        patient_id=patient.id,  # type: ignore[arg-type]
        item_id=item.id,  # type: ignore[arg-type]
        sessions=sessions,
        payment_status=status,
        ordering_doctor_id=ordering_doctor_id,
        ordering_doctor_name=ordering_doctor_name,
        source=source,
        created_by_id=actor.user_id or None,
        created_at=now,
        updated_at=now,
    )
    session.add(order)
    await session.flush()
    assert order.id is not None
    await append_event(
        session,
        order_stream(order.id),
        "created",
        actor=actor,
        at=now,
        data={
            "item": item.code,
            "sessions": sessions,
            "payment_status": status,
            "source": source,
            "his_order_no": his_order_no,
        },
    )
    await remember(
        session, "treatments.create_order", idempotency_key, {"order_id": order.id}, actor=actor
    )
    return await _answered(session, actor, order)


async def _answered(session: AsyncSession, actor: Actor, order: TreatmentOrder) -> TreatmentOrder:
    """The order goes back with its patient: that is an access to the patient."""
    await log_patient_access(
        session,
        actor,
        "treatment_order",
        [order.patient_id],
        action="create",
        detail={"order_id": order.id},
    )
    return order


def _payment_status(value: PaymentStatus | str) -> PaymentStatus:
    try:
        return PaymentStatus(str(value).lower())
    except ValueError:
        raise invalid(
            "paymentStatus",
            "缴费状态须为 paid/unpaid/refunded / payment status must be paid, unpaid or refunded",
        ) from None


async def _get(session: AsyncSession, order_id: int, *, lock: bool = False) -> TreatmentOrder:
    stmt = sa.select(TreatmentOrder).where(TreatmentOrder.id == order_id)
    if lock:
        stmt = stmt.with_for_update()
    order = (await session.execute(stmt)).scalar_one_or_none()
    if order is None:
        raise DomainError(
            ErrorCode.NOT_FOUND, "治疗医嘱不存在 / treatment order not found", field="orderId"
        )
    return order


async def access_order(
    session: AsyncSession, actor: Actor, order_id: int, *, lock: bool = False
) -> TreatmentOrder:
    """The order if the actor may see its patient (NOT_FOUND / FORBIDDEN otherwise)."""
    order = await _get(session, order_id, lock=lock)
    await load_patient(session, actor, order.patient_id)
    return order


async def order_by_his_no(session: AsyncSession, his_order_no: str) -> TreatmentOrder | None:
    stmt = sa.select(TreatmentOrder).where(TreatmentOrder.his_order_no == his_order_no)
    return (await session.execute(stmt)).scalar_one_or_none()


async def set_payment_status(
    session: AsyncSession,
    order: TreatmentOrder,
    status: PaymentStatus | str,
    *,
    actor: Actor,
    source: str = "admin",
    now: datetime | None = None,
) -> TreatmentOrder:
    """Record a payment change (HIS 确费 / refund). Same status again changes nothing."""
    require_treatment_staff(actor)
    new = _payment_status(status)
    if order.payment_status == new:
        return order
    now = now_or(now)
    old = order.payment_status
    order.payment_status = new
    order.updated_at = now
    await session.flush()
    assert order.id is not None
    await append_event(
        session,
        order_stream(order.id),
        "payment_status",
        actor=actor,
        at=now,
        data={"from": old, "to": new, "source": source},
    )
    return order


async def change_order(
    session: AsyncSession,
    order: TreatmentOrder,
    *,
    sessions: int,
    actor: Actor,
    reason: str | None = None,
    now: datetime | None = None,
) -> TreatmentOrder:
    """Change the number of sessions of an order (HIS 修改医嘱, order control XO).

    It cannot go below what has been performed and booked already; the same number again
    changes nothing.
    """
    require_treatment_staff(actor)
    if order.cancelled_at is not None:
        raise DomainError(ErrorCode.CONFLICT, "医嘱已撤销 / the order is cancelled")
    if not isinstance(sessions, int) or not 1 <= sessions <= MAX_SESSIONS:
        raise invalid(
            "sessions", f"次数须在 1-{MAX_SESSIONS} 之间 / sessions must be 1-{MAX_SESSIONS}"
        )
    if sessions == order.sessions:
        return order
    assert order.id is not None
    committed = order.used_sessions + await active_bookings(session, order.id)
    if sessions < committed:
        raise invalid(
            "sessions",
            f"次数不能少于已执行和已预约的 {committed} 次 / sessions cannot go below the"
            f" {committed} performed or booked",
        )
    now = now_or(now)
    old = order.sessions
    order.sessions = sessions
    order.updated_at = now
    await session.flush()
    await append_event(
        session,
        order_stream(order.id),
        "changed",
        actor=actor,
        at=now,
        data={"sessions": {"from": old, "to": sessions}, "reason": (reason or "")[:200]},
    )
    return order


async def cancel_order(
    session: AsyncSession,
    order: TreatmentOrder,
    *,
    actor: Actor,
    reason: str | None = None,
    now: datetime | None = None,
) -> TreatmentOrder:
    """Cancel an order (HIS cancel, refund): its upcoming appointments are cancelled too."""
    from api.domain.treatments.appointments import cancel_appointment

    require_treatment_staff(actor)
    if order.cancelled_at is not None:
        return order
    now = now_or(now)
    upcoming = (
        (
            await session.execute(
                sa.select(Appointment).where(
                    Appointment.order_id == order.id,
                    Appointment.status == "booked",
                    Appointment.deleted_at.is_(None),
                )
            )
        )
        .scalars()
        .all()
    )
    for appointment in upcoming:
        await cancel_appointment(
            session, appointment, actor=actor, reason="医嘱已撤销 / order cancelled", now=now
        )
    order.cancelled_at = now
    order.updated_at = now
    await session.flush()
    assert order.id is not None
    await append_event(
        session,
        order_stream(order.id),
        "cancelled",
        actor=actor,
        at=now,
        data={"reason": (reason or "")[:200]},
    )
    return order


async def merge_orders(
    session: AsyncSession, order_ids: Sequence[int], *, actor: Actor, now: datetime | None = None
) -> TreatmentCourse:
    """Merge orders of one patient and one item into a course (合并预约)."""
    require_treatment_staff(actor)
    ids = sorted(set(order_ids))
    if len(ids) < 2:
        raise invalid("orderIds", "至少选择两条医嘱 / choose at least two orders")
    orders = [await access_order(session, actor, oid, lock=True) for oid in ids]
    first = orders[0]
    for order in orders:
        if order.patient_id != first.patient_id or order.item_id != first.item_id:
            raise invalid(
                "orderIds",
                "只能合并同一患者同一项目的医嘱 / only orders of one patient and one item can be merged",
            )
        if order.cancelled_at is not None:
            raise DomainError(
                ErrorCode.CONFLICT,
                "已撤销的医嘱不能合并 / a cancelled order cannot be merged",
                field="orderIds",
            )
    now = now_or(now)
    course_ids = {o.course_id for o in orders if o.course_id}
    course: TreatmentCourse | None = None
    if course_ids:
        course = await session.get(TreatmentCourse, min(course_ids))
    if course is None:
        course = TreatmentCourse(
            patient_id=first.patient_id,
            item_id=first.item_id,
            created_by_id=actor.user_id or None,
            created_at=now,
        )
        session.add(course)
        await session.flush()
    # Orders of other courses being merged in move with their whole course.
    if len(course_ids) > 1:
        await session.execute(
            sa.update(TreatmentOrder)
            .where(TreatmentOrder.course_id.in_(course_ids))
            .values(course_id=course.id)
        )
    for order in orders:
        order.course_id = course.id
        order.updated_at = now
        await append_event(
            session,
            order_stream(order.id),
            "merged",
            actor=actor,
            at=now,
            data={"course_id": course.id},
        )  # type: ignore[arg-type]
    course.completed_at = None
    await session.flush()
    return course


async def course_orders(session: AsyncSession, order: TreatmentOrder) -> list[TreatmentOrder]:
    """The order itself, or every order of its course."""
    if order.course_id is None:
        return [order]
    stmt = (
        sa.select(TreatmentOrder)
        .where(TreatmentOrder.course_id == order.course_id)
        .order_by(TreatmentOrder.id)
    )
    return list((await session.execute(stmt)).scalars())


async def orders_for_patient(
    session: AsyncSession, patient_id: int, *, include_cancelled: bool = False
) -> list[TreatmentOrder]:
    stmt = (
        sa.select(TreatmentOrder)
        .where(TreatmentOrder.patient_id == patient_id)
        .order_by(TreatmentOrder.id.desc())
    )
    if not include_cancelled:
        stmt = stmt.where(TreatmentOrder.cancelled_at.is_(None))
    return list((await session.execute(stmt)).scalars())


async def consume_session(
    session: AsyncSession, order: TreatmentOrder, *, now: datetime
) -> TreatmentOrder:
    """Count one archived session against the order (or, if used up, its course).

    A conditional UPDATE: two archives racing for the last session cannot both count.
    """
    candidates = [order] + [o for o in await course_orders(session, order) if o.id != order.id]
    for candidate in candidates:
        result = await session.execute(
            sa.update(TreatmentOrder)
            .where(
                TreatmentOrder.id == candidate.id,
                TreatmentOrder.used_sessions < TreatmentOrder.sessions,
            )
            .values(used_sessions=TreatmentOrder.used_sessions + 1, updated_at=now)
            .returning(TreatmentOrder.used_sessions)
        )
        used = result.scalar_one_or_none()
        if used is not None:
            await session.refresh(candidate)
            return candidate
    raise DomainError(
        TreatmentErrorCode.NO_SESSIONS_LEFT,
        "该医嘱的治疗次数已用完 / no sessions left on this order",
    )


async def get_course(session: AsyncSession, course_id: int) -> TreatmentCourse:
    course = await session.get(TreatmentCourse, course_id)
    if course is None:
        raise not_found("疗程", "course")
    return course


async def _expected_streams(session: AsyncSession) -> list[str]:
    """Every order and every archived record has a hash chain; a missing one is tampering."""
    from api.models.treatments import TreatmentRecord

    orders = (await session.execute(sa.select(TreatmentOrder.id))).scalars()
    archived = (
        await session.execute(
            sa.select(TreatmentRecord.id).where(TreatmentRecord.status == "archived")
        )
    ).scalars()
    return [order_stream(i) for i in orders] + [f"treatment_record:{i}" for i in archived]


# `bedside audit verify` reports an order or archived record whose whole history was deleted.
if _expected_streams not in expected_stream_sources:
    expected_stream_sources.append(_expected_streams)
