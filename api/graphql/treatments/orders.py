"""Treatment items and orders: list items, create/cancel/merge orders, payment status."""

from __future__ import annotations

import sqlalchemy as sa
import strawberry

from api.audit import record_access
from api.domain.treatments import orders
from api.domain.treatments.common import load_patient, patient_of_actor
from api.graphql.context import Info
from api.graphql.permissions import HasRole, IsAuthenticated, IsPatient
from api.graphql.scalars import parse_id
from api.graphql.treatments.types import PaymentStatus, TreatmentItem, TreatmentOrder
from api.models.people import Role
from api.models.treatments import TreatmentItem as ItemRow

TreatmentStaff = HasRole(Role.THERAPIST, Role.NURSE, Role.DEPT_HEAD)


@strawberry.input(description="新建治疗医嘱 / a new treatment order")
class CreateTreatmentOrderInput:
    patient_id: strawberry.ID
    item_code: str
    sessions: int
    paid: bool
    his_order_no: str | None = None
    ordering_doctor: str | None = None
    idempotency_key: str | None = None


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[IsAuthenticated], description="治疗项目 / treatment items"
    )
    async def treatment_items(self, info: Info) -> list[TreatmentItem]:
        info.context.require_actor()
        async with info.context.read() as session:
            rows = (
                await session.execute(
                    sa.select(ItemRow).where(ItemRow.is_active.is_(True)).order_by(ItemRow.code)
                )
            ).scalars()
            return [TreatmentItem.from_row(r) for r in rows]

    @strawberry.field(
        permission_classes=[IsPatient], description="我的治疗医嘱 / the signed-in patient's orders"
    )
    async def my_orders(self, info: Info) -> list[TreatmentOrder]:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            patient = await patient_of_actor(session, actor)
            rows = await orders.orders_for_patient(session, patient.id)  # type: ignore[arg-type]
            await record_access(
                session,
                actor,
                "treatment_orders",
                detail={"patient_id": patient.id},
                patient_ids=[patient.id],
            )
        return [TreatmentOrder.from_row(r) for r in rows]

    @strawberry.field(
        permission_classes=[TreatmentStaff], description="某患者的治疗医嘱 / a patient's orders"
    )
    async def treatment_orders(
        self, info: Info, patient_id: strawberry.ID, include_cancelled: bool = False
    ) -> list[TreatmentOrder]:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            patient = await load_patient(session, actor, parse_id(patient_id, "patientId"))
            rows = await orders.orders_for_patient(
                session, patient.id, include_cancelled=include_cancelled
            )  # type: ignore[arg-type]
            await record_access(
                session,
                actor,
                "treatment_orders",
                detail={"patient_id": patient.id},
                patient_ids=[patient.id],
            )
        return [TreatmentOrder.from_row(r) for r in rows]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[TreatmentStaff],
        description="新建治疗医嘱（HIS 接口走同一服务）/ create a treatment order",
    )
    async def create_treatment_order(
        self, info: Info, input: CreateTreatmentOrderInput
    ) -> TreatmentOrder:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            row = await orders.create_order(
                session,
                patient_id=parse_id(input.patient_id, "patientId"),
                item_code=input.item_code,
                sessions=input.sessions,
                payment_status="paid" if input.paid else "unpaid",
                actor=actor,
                his_order_no=input.his_order_no,
                ordering_doctor_name=input.ordering_doctor,
                idempotency_key=input.idempotency_key,
            )
        return TreatmentOrder.from_row(row)

    @strawberry.mutation(
        permission_classes=[TreatmentStaff], description="设置缴费状态 / set payment status"
    )
    async def set_order_payment_status(
        self, info: Info, order_id: strawberry.ID, status: PaymentStatus
    ) -> TreatmentOrder:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            order = await orders.access_order(
                session, actor, parse_id(order_id, "orderId"), lock=True
            )
            row = await orders.set_payment_status(
                session, order, status.value, actor=actor, source="admin"
            )
        return TreatmentOrder.from_row(row)

    @strawberry.mutation(
        permission_classes=[TreatmentStaff], description="撤销医嘱 / cancel an order"
    )
    async def cancel_treatment_order(
        self, info: Info, order_id: strawberry.ID, reason: str | None = None
    ) -> TreatmentOrder:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            order = await orders.access_order(
                session, actor, parse_id(order_id, "orderId"), lock=True
            )
            row = await orders.cancel_order(session, order, actor=actor, reason=reason)
        return TreatmentOrder.from_row(row)

    @strawberry.mutation(
        permission_classes=[TreatmentStaff],
        description="合并医嘱为一个疗程 / merge orders into a course",
    )
    async def merge_treatment_orders(
        self, info: Info, order_ids: list[strawberry.ID]
    ) -> list[TreatmentOrder]:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            ids = [parse_id(i, "orderIds") for i in order_ids]
            course = await orders.merge_orders(session, ids, actor=actor)
            first = await orders.access_order(session, actor, ids[0])
            rows = await orders.course_orders(session, first)
            assert course.id is not None
        return [TreatmentOrder.from_row(r) for r in rows]
