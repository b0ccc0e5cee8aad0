"""Slots and appointments: availableSlots, book, cancel, reschedule, series, walk-in, worklist."""

from __future__ import annotations

import base64
from datetime import date
from typing import Annotated

import strawberry

from api.audit import record_access
from api.domain.treatments import appointments, schedules, waitlist
from api.domain.treatments.common import is_staff, patient_of_actor
from api.domain.treatments.orders import access_order
from api.domain.treatments.receipt import appointment_receipt_pdf
from api.graphql.context import Info
from api.graphql.permissions import IsAuthenticated, IsPatient, IsStaff
from api.graphql.scalars import parse_id
from api.graphql.treatments.loaders import prime_related
from api.graphql.treatments.orders import TreatmentStaff
from api.graphql.treatments.types import (
    Appointment,
    AppointmentReceipt,
    BookingChannel,
    SeriesBooking,
    Slot,
    UnplacedSession,
)


@strawberry.input(description="按周期批量预约 / book a recurring series")
class SeriesInput:
    order_id: strawberry.ID
    start: date
    at: str = strawberry.field(description="本地时间 HH:MM / local time")
    sessions: int
    weekdays: list[int] | None = strawberry.field(
        default=None, description="0=周一 … 6=周日 / 0 = Monday; default Mon-Fri"
    )
    channel: BookingChannel = BookingChannel.ADMIN
    idempotency_key: str | None = None


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[IsAuthenticated], description="可预约时段 / open slots of an item"
    )
    async def available_slots(
        self,
        info: Info,
        item_code: str,
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
    ) -> list[Slot]:
        info.context.require_actor()
        async with info.context.read() as session:
            rows = await schedules.available_slots(
                session, item_code=item_code, start=from_, end=to, tz=info.context.settings.tz
            )
        return [Slot.from_row(r) for r in rows]

    @strawberry.field(
        permission_classes=[IsStaff],
        description="治疗师当日工作列表 / a therapist's appointments of the day",
    )
    async def my_worklist(
        self, info: Info, date: date, therapist_id: strawberry.ID | None = None
    ) -> list[Appointment]:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            entries = await appointments.worklist_entries(
                session,
                actor,
                day=date,
                therapist_id=parse_id(therapist_id, "therapistId") if therapist_id else None,
                tz=info.context.settings.tz,
            )
            prime_related(info.context, entries)  # the domain logged the patients it returns
        return [Appointment.from_row(a) for a, _, _ in entries]

    @strawberry.field(
        permission_classes=[IsPatient],
        description="我的预约 / the signed-in patient's appointments",
    )
    async def my_appointments(self, info: Info) -> list[Appointment]:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            patient = await patient_of_actor(session, actor)
            rows = await appointments.appointments_for_patient(session, patient.id)  # type: ignore[arg-type]
            await record_access(
                session,
                actor,
                "appointments",
                detail={"patient_id": patient.id},
                patient_ids=[patient.id],
            )
        return [Appointment.from_row(r) for r in rows]

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="一个预约（含回执）/ one appointment with its receipt",
    )
    async def appointment(self, info: Info, id: strawberry.ID) -> Appointment:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            row = await appointments.access_appointment(session, actor, parse_id(id))
            await record_access(
                session, actor, "appointment", detail={"id": row.id}, patient_ids=[row.patient_id]
            )
        return Appointment.from_row(row)

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="预约回执单（PDF，可打印或保存）/ the booking receipt as a PDF to print or keep",
    )
    async def appointment_receipt(self, info: Info, id: strawberry.ID) -> AppointmentReceipt:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            receipt = await appointment_receipt_pdf(
                session, actor, parse_id(id), tz=info.context.settings.tz
            )
        return AppointmentReceipt(
            filename=receipt.filename,
            content_type="application/pdf",
            size_bytes=len(receipt.content),
            content_base64=base64.b64encode(receipt.content).decode(),
        )


def _default_channel(info: Info, channel: BookingChannel | None) -> str | None:
    actor = info.context.require_actor()
    if channel is not None:
        return channel.value
    if actor.via == "wechat_oa" or not is_staff(actor):
        return "official_account"
    return None


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated], description="预约（患者本人或工作人员）/ book a slot"
    )
    async def book_appointment(
        self,
        info: Info,
        slot_id: strawberry.ID,
        order_id: strawberry.ID | None = None,
        channel: BookingChannel | None = None,
        idempotency_key: str | None = None,
    ) -> Appointment:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            row = await appointments.book_appointment(
                session,
                parse_id(slot_id, "slotId"),
                actor=actor,
                order_id=parse_id(order_id, "orderId") if order_id else None,
                channel=_default_channel(info, channel),
                idempotency_key=idempotency_key,
                tz=info.context.settings.tz,
            )
        return Appointment.from_row(row)

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="候补已约满的时段 / wait for a seat of a full slot",
    )
    async def join_waitlist(
        self,
        info: Info,
        slot_id: strawberry.ID,
        order_id: strawberry.ID | None = None,
        channel: BookingChannel | None = None,
        idempotency_key: str | None = None,
    ) -> Appointment:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            row = await waitlist.join_waitlist(
                session,
                parse_id(slot_id, "slotId"),
                actor=actor,
                order_id=parse_id(order_id, "orderId") if order_id else None,
                channel=_default_channel(info, channel),
                idempotency_key=idempotency_key,
            )
        return Appointment.from_row(row)

    @strawberry.mutation(
        permission_classes=[IsAuthenticated], description="取消预约 / cancel an appointment"
    )
    async def cancel_appointment(
        self, info: Info, id: strawberry.ID, reason: str | None = None
    ) -> Appointment:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            row = await appointments.access_appointment(session, actor, parse_id(id), lock=True)
            row = await appointments.cancel_appointment(
                session, row, actor=actor, reason=reason, tz=info.context.settings.tz
            )
        return Appointment.from_row(row)

    @strawberry.mutation(
        permission_classes=[IsAuthenticated], description="改约 / move to another slot"
    )
    async def reschedule_appointment(
        self,
        info: Info,
        id: strawberry.ID,
        slot_id: strawberry.ID,
        idempotency_key: str | None = None,
    ) -> Appointment:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            row = await appointments.access_appointment(session, actor, parse_id(id), lock=True)
            new = await appointments.reschedule_appointment(
                session,
                row,
                parse_id(slot_id, "slotId"),
                actor=actor,
                idempotency_key=idempotency_key,
                tz=info.context.settings.tz,
            )
        return Appointment.from_row(new)

    @strawberry.mutation(
        permission_classes=[TreatmentStaff], description="按周期批量预约 / book a recurring series"
    )
    async def book_appointment_series(self, info: Info, input: SeriesInput) -> SeriesBooking:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            order = await access_order(session, actor, parse_id(input.order_id, "orderId"))
            result = await appointments.book_series(
                session,
                order,
                start=input.start,
                at=input.at,
                sessions=input.sessions,
                weekdays=input.weekdays,
                channel=input.channel.value,
                actor=actor,
                idempotency_key=input.idempotency_key,
                tz=info.context.settings.tz,
            )
        return SeriesBooking(
            series_id=strawberry.ID(str(result.series.id)),
            requested=result.series.requested,
            appointments=[Appointment.from_row(a) for a in result.appointments],
            unplaced=[
                UnplacedSession(
                    date=date.fromisoformat(u["date"]) if u["date"] else None, reason=u["reason"]
                )
                for u in result.unplaced
            ],
        )

    @strawberry.mutation(
        permission_classes=[TreatmentStaff], description="未预约患者直接治疗 / register a walk-in"
    )
    async def register_walk_in(
        self,
        info: Info,
        order_id: strawberry.ID,
        room: str = "",
        idempotency_key: str | None = None,
    ) -> Appointment:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            order = await access_order(session, actor, parse_id(order_id, "orderId"))
            row = await appointments.register_walk_in(
                session,
                order,
                actor=actor,
                room=room,
                idempotency_key=idempotency_key,
                tz=info.context.settings.tz,
            )
        return Appointment.from_row(row)
