"""Orders (ORM/OMG), payments (DFT) and HIS bookings (SIU) through the real listener."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from api.domain.treatments.orders import order_stream
from api.models.audit import AuditEvent
from api.models.hl7 import HL7AppointmentLink
from api.models.treatments import Appointment, Slot, TreatmentItem, TreatmentOrder
from api.services import Services
from integrations.hl7.config import HL7Config, HL7Mapping
from integrations.hl7.listener import build_server
from integrations.hl7.mllp import MLLPClient
from tests.conftest import GraphQLClient
from tests.hl7.messages import ack_fields, dft, orm, segment, siu


async def order(services: Services, number: str) -> TreatmentOrder | None:
    async with services.db.session() as session:
        return (
            await session.execute(
                sa.select(TreatmentOrder).where(TreatmentOrder.his_order_no == number)
            )
        ).scalar_one_or_none()


MY_ORDERS = "{ myOrders { id item { code } remainingSessions paymentStatus } }"


async def zhou_order_status(gql: GraphQLClient, order_id: int) -> str:
    zhou = await gql.as_user("patient.zhou")
    orders = (await zhou.data(MY_ORDERS))["myOrders"]
    return next(o["paymentStatus"] for o in orders if o["id"] == str(order_id)).lower()


async def test_order_then_cancel(his: MLLPClient, demo: Services) -> None:
    reply = ack_fields(await his.send(orm("ORM-1", "HIS-ORD-1001").encode()))
    assert reply["code"] == "AA", reply
    created = await order(demo, "HIS-ORD-1001")
    assert created is not None and created.cancelled_at is None
    assert created.sessions == 10 and created.source == "his" and created.payment_status == "unpaid"
    assert created.ordering_doctor_name == "李明" and created.ordering_doctor_id is not None
    async with demo.db.session() as session:
        item = await session.get(TreatmentItem, created.item_id)
    assert item is not None and item.code == "PHYSIO"  # KF-PT-01 mapped by configuration

    assert (
        ack_fields(await his.send(orm("ORM-2", "HIS-ORD-1001", control="CA").encode()))["code"]
        == "AA"
    )
    cancelled = await order(demo, "HIS-ORD-1001")
    assert cancelled is not None and cancelled.cancelled_at is not None


async def test_order_for_unknown_patient_or_item_writes_nothing(
    his: MLLPClient, demo: Services
) -> None:
    reply = ack_fields(await his.send(orm("ORM-3", "HIS-ORD-2001", mrn="NOBODY").encode()))
    assert (
        reply["code"] == "AE" and reply["err_code"] == "204" and "unknown patient" in reply["text"]
    )
    reply = ack_fields(
        await his.send(orm("ORM-4", "HIS-ORD-2002", item="KF-XX-99^未知项目").encode())
    )
    assert (
        reply["code"] == "AE"
        and reply["err_code"] == "204"
        and "treatment item not found" in reply["text"]
    )
    reply = ack_fields(await his.send(orm("ORM-5", "HIS-ORD-2003", sessions="").encode()))
    assert reply["code"] == "AE" and reply["err_code"] == "101"
    reply = ack_fields(await his.send(orm("ORM-6", "HIS-ORD-2004", control="CA").encode()))
    assert reply["code"] == "AE" and "unknown order" in reply["text"]
    for number in ("HIS-ORD-2001", "HIS-ORD-2002", "HIS-ORD-2003"):
        assert await order(demo, number) is None


async def test_dft_payment_then_refund_changes_the_order(
    his: MLLPClient, gql: GraphQLClient, demo: Services
) -> None:
    assert ack_fields(await his.send(orm("ORM-10", "HIS-ORD-3001").encode()))["code"] == "AA"
    created = await order(demo, "HIS-ORD-3001")
    assert created is not None
    assert await zhou_order_status(gql, created.id) == "unpaid"

    charge_only = ack_fields(await his.send(dft("DFT-1", "HIS-ORD-3001", "").encode()))
    assert charge_only["code"] == "AA"
    assert await zhou_order_status(gql, created.id) == "unpaid"  # a CG row is not a payment

    paid = await his.send(dft("DFT-2", "HIS-ORD-3001", "PY").encode())
    assert ack_fields(paid)["code"] == "AA"
    assert await zhou_order_status(gql, created.id) == "paid"
    # The HIS resends the payment (lost ACK): the same ACK, and no second history event.
    assert await his.send(dft("DFT-2", "HIS-ORD-3001", "PY").encode()) == paid

    assert ack_fields(await his.send(dft("DFT-3", "HIS-ORD-3001", "RF").encode()))["code"] == "AA"
    assert await zhou_order_status(gql, created.id) == "refunded"
    async with demo.db.session() as session:
        events = (
            await session.execute(
                sa.select(AuditEvent.action, AuditEvent.data)
                .where(AuditEvent.stream == order_stream(created.id))
                .order_by(AuditEvent.seq)
            )
        ).all()
    payment_events = [
        (data["from"], data["to"]) for action, data in events if action == "payment_status"
    ]
    assert payment_events == [("unpaid", "paid"), ("paid", "refunded")]


async def test_payment_read_from_orc25_or_a_z_segment(
    demo: Services, hl7_config: HL7Config, gql: GraphQLClient
) -> None:
    for source, number, message in (
        ("orc25", "HIS-ORD-4001", orm("ORM-20", "HIS-ORD-4001", orc25="已收费")),
        (
            "zsegment",
            "HIS-ORD-4002",
            orm("ORM-21", "HIS-ORD-4002", extra=[segment("ZPY", {1: "HIS-ORD-4002", 2: "PAID"})]),
        ),
    ):
        mapping = HL7Mapping.from_dict(
            {
                "item_codes": hl7_config.mapping.item_codes,
                "doctors": hl7_config.mapping.doctors,
                "payment": {"source": source},
            }
        )
        server = build_server(demo, HL7Config(hl7_config.settings, mapping), port=0)
        async with server, MLLPClient("127.0.0.1", server.port) as client:
            assert ack_fields(await client.send(message.encode()))["code"] == "AA"
        created = await order(demo, number)
        assert created is not None and created.payment_status == "paid", source

    # An unknown value is refused, not guessed.
    mapping = HL7Mapping.from_dict(
        {"item_codes": hl7_config.mapping.item_codes, "payment": {"source": "orc25"}}
    )
    server = build_server(demo, HL7Config(hl7_config.settings, mapping), port=0)
    async with server, MLLPClient("127.0.0.1", server.port) as client:
        reply = ack_fields(await client.send(orm("ORM-22", "HIS-ORD-4003", orc25="MAYBE").encode()))
    assert reply["code"] == "AE" and reply["err_code"] == "103"
    assert await order(demo, "HIS-ORD-4003") is None


async def test_his_books_and_cancels_an_appointment(his: MLLPClient, demo: Services) -> None:
    async with demo.db.session() as session:
        slot = (
            await session.execute(
                sa.select(Slot)
                .join(TreatmentItem, TreatmentItem.id == Slot.item_id)
                .where(
                    TreatmentItem.code == "PHYSIO",
                    Slot.remaining > 0,
                    Slot.starts_at > datetime.now(UTC),
                )
                .order_by(Slot.starts_at)
                .limit(1)
            )
        ).scalar_one()
    start = slot.starts_at.strftime("%Y%m%d%H%M%S+0000")
    reply = ack_fields(
        await his.send(
            siu("S12", "SIU-1", "HISAPT-1", start=start, order_no="DEMO-P0001-PHYSIO").encode()
        )
    )
    assert reply["code"] == "AA", reply
    async with demo.db.session() as session:
        link = (
            await session.execute(
                sa.select(HL7AppointmentLink).where(
                    HL7AppointmentLink.his_appointment_id == "HISAPT-1"
                )
            )
        ).scalar_one()
        booked = await session.get(Appointment, link.appointment_id)
        assert (
            booked is not None
            and booked.status == "booked"
            and booked.channel == "his"
            and booked.slot_id == slot.id
        )
        assert (await session.get(Slot, slot.id)).remaining == slot.remaining - 1  # type: ignore[union-attr]

    assert (
        ack_fields(await his.send(siu("S15", "SIU-2", "HISAPT-1", start=start).encode()))["code"]
        == "AA"
    )
    async with demo.db.session() as session:
        cancelled = await session.get(Appointment, link.appointment_id)
        assert cancelled is not None and cancelled.status == "cancelled"
        assert (await session.get(Slot, slot.id)).remaining == slot.remaining  # type: ignore[union-attr]

    reply = ack_fields(await his.send(siu("S15", "SIU-3", "HISAPT-404", start=start).encode()))
    assert reply["code"] == "AE" and reply["err_code"] == "204"
