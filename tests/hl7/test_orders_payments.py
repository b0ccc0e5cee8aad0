"""Orders (ORM/OMG), payments (ORC-25, FT1, DFT) and HIS bookings (SIU) through the listener.

The messages are built from the v2.5 (and v2.4) definitions in tests/hl7/standard.py; the
expected numbers come from what those fields mean, e.g. "once a day, ten times" is
TQ1-2 = 1 (quantity per occurrence), TQ1-3 = QD, TQ1-14 = 10 (total occurrences).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from api.domain.treatments.orders import order_stream
from api.models.audit import AuditEvent
from api.models.hl7 import HL7AppointmentLink
from api.models.patients import Patient
from api.models.treatments import Appointment, Slot, TreatmentItem, TreatmentOrder
from api.services import Services
from integrations.hl7.config import HL7Config, HL7Mapping
from integrations.hl7.listener import build_server
from integrations.hl7.mllp import MLLPClient
from tests.conftest import GraphQLClient
from tests.hl7.standard import (
    Charge,
    Order,
    Person,
    Phone,
    dft,
    encode,
    omg,
    orm,
    read_ack,
    siu,
)


async def order(services: Services, number: str) -> TreatmentOrder | None:
    async with services.db.session() as session:
        return (
            await session.execute(
                sa.select(TreatmentOrder).where(TreatmentOrder.his_order_no == number)
            )
        ).scalar_one_or_none()


async def order_events(services: Services, order_id: int) -> list[tuple[str, dict]]:
    async with services.db.session() as session:
        rows = (
            await session.execute(
                sa.select(AuditEvent.action, AuditEvent.data)
                .where(AuditEvent.stream == order_stream(order_id))
                .order_by(AuditEvent.seq)
            )
        ).all()
    return [(action, data) for action, data in rows]


async def counts(services: Services) -> tuple[int, int]:
    async with services.db.session() as session:
        orders = (
            await session.execute(sa.select(sa.func.count()).select_from(TreatmentOrder))
        ).scalar_one()
        patients = (
            await session.execute(sa.select(sa.func.count()).select_from(Patient))
        ).scalar_one()
    return orders, patients


MY_ORDERS = "{ myOrders { id item { code } remainingSessions paymentStatus } }"


async def zhou_order(gql: GraphQLClient, order_id: int) -> dict:
    zhou = await gql.as_user("patient.zhou")
    orders = (await zhou.data(MY_ORDERS))["myOrders"]
    return next(o for o in orders if o["id"] == str(order_id))


async def test_once_a_day_ten_times_is_ten_sessions(his: MLLPClient, demo: Services) -> None:
    # OMG^O19 v2.5: TQ1-2 Quantity 1 (per occurrence), TQ1-3 QD, TQ1-14 Total Occurrences 10.
    reply = read_ack(await his.send(encode(omg("OMG-1", [Order("HIS-ORD-1001", total="10")]))))
    assert reply.code == "AA", reply
    created = await order(demo, "HIS-ORD-1001")
    assert created is not None and created.sessions == 10 and created.source == "his"
    assert created.payment_status == "unpaid"
    assert created.ordering_doctor_name == "李明" and created.ordering_doctor_id is not None
    async with demo.db.session() as session:
        item = await session.get(TreatmentItem, created.item_id)
    assert item is not None and item.code == "PHYSIO"  # KF-PT-01 mapped by configuration

    # The same in GB 18030, with the count as TQ.12 of ORC-7 (ORM^O01 v2.4) ...
    reply = read_ack(
        await his.send(
            encode(
                orm(
                    "ORM-24",
                    [Order("HIS-ORD-1002", total="8")],
                    version="2.4",
                    charset="GB 18030-2000",
                )
            )
        ),
        "gb18030",
    )
    assert reply.code == "AA" and reply.charset == "GB 18030-2000", reply
    second = await order(demo, "HIS-ORD-1002")
    assert second is not None and second.sessions == 8 and second.ordering_doctor_name == "李明"
    # ... and as a count X6 in TQ.3 (duration) of ORC-7 (ORM^O01 v2.5).
    reply = read_ack(await his.send(encode(orm("ORM-25", [Order("HIS-ORD-1003", duration="X6")]))))
    assert reply.code == "AA", reply
    third = await order(demo, "HIS-ORD-1003")
    assert third is not None and third.sessions == 6


async def test_an_order_without_a_count_is_refused(his: MLLPClient, demo: Services) -> None:
    before = await counts(demo)
    # TQ1-2 says 1 per occurrence; nothing says how many occurrences.
    reply = read_ack(await his.send(encode(omg("OMG-2", [Order("HIS-ORD-2003")]))))
    assert reply.code == "AE" and reply.err_code == "101" and "total occurrences" in reply.text
    reply = read_ack(await his.send(encode(omg("OMG-3", [Order("HIS-ORD-2004", total="2.5")]))))
    assert reply.code == "AE" and reply.err_code == "102"
    reply = read_ack(
        await his.send(encode(omg("OMG-4", [Order("HIS-ORD-2002", item="KF-XX-99", total="3")])))
    )
    assert (
        reply.code == "AE" and reply.err_code == "204" and "treatment item not found" in reply.text
    )
    reply = read_ack(await his.send(encode(orm("ORM-6", [Order("HIS-ORD-2005", control="CA")]))))
    assert reply.code == "AE" and "unknown order" in reply.text
    assert await counts(demo) == before


async def test_change_status_change_and_cancel(
    his: MLLPClient, demo: Services, gql: GraphQLClient
) -> None:
    assert (
        read_ack(await his.send(encode(omg("OMG-10", [Order("HIS-ORD-3001", total="10")])))).code
        == "AA"
    )
    created = await order(demo, "HIS-ORD-3001")
    assert created is not None and created.id is not None

    # XO change order: twelve occurrences now.
    reply = read_ack(
        await his.send(encode(omg("OMG-11", [Order("HIS-ORD-3001", control="XO", total="12")])))
    )
    assert reply.code == "AA", reply
    assert (await zhou_order(gql, created.id))["remainingSessions"] == 12

    # SC status changed, ORC-25 carrying the HIS's 收费 status: the order is paid.
    reply = read_ack(
        await his.send(
            encode(
                orm(
                    "ORM-12",
                    [Order("HIS-ORD-3001", control="SC", status="IP", status_modifier="已收费")],
                )
            )
        )
    )
    assert reply.code == "AA", reply
    assert (await zhou_order(gql, created.id))["paymentStatus"].lower() == "paid"

    # XO below what is used and booked is refused; nothing changes.
    async with demo.db.transaction() as session:
        row = await session.get(TreatmentOrder, created.id)
        assert row is not None
        row.used_sessions = 5
    reply = read_ack(
        await his.send(encode(omg("OMG-13", [Order("HIS-ORD-3001", control="XO", total="4")])))
    )
    assert reply.code == "AE" and reply.err_code == "102", reply
    assert (await order(demo, "HIS-ORD-3001")).sessions == 12  # type: ignore[union-attr]

    # SC with ORC-5 Order Status CA (table 0038): the order ends.
    reply = read_ack(
        await his.send(encode(orm("ORM-14", [Order("HIS-ORD-3001", control="SC", status="CA")])))
    )
    assert reply.code == "AA", reply
    ended = await order(demo, "HIS-ORD-3001")
    assert ended is not None and ended.cancelled_at is not None
    actions = [action for action, _ in await order_events(demo, created.id)]
    assert actions == ["created", "changed", "payment_status", "cancelled"]


async def test_payment_from_ft1_rows_inside_orders(
    his: MLLPClient, demo: Services, gql: GraphQLClient
) -> None:
    # ORM^O01 ORDER group: ORC, OBR, then FT1 (both ORM and OMG allow FT1 there).
    reply = read_ack(
        await his.send(
            encode(orm("ORM-30", [Order("HIS-ORD-4001", duration="X10", payments=["CG", "PY"])]))
        )
    )
    assert reply.code == "AA", reply
    paid = await order(demo, "HIS-ORD-4001")
    assert paid is not None and paid.payment_status == "paid"
    # A refund row in an OMG^O19 status change.
    reply = read_ack(
        await his.send(
            encode(omg("OMG-31", [Order("HIS-ORD-4001", control="SC", payments=["RF"])]))
        )
    )
    assert reply.code == "AA", reply
    assert (await zhou_order(gql, paid.id))["paymentStatus"].lower() == "refunded"  # type: ignore[arg-type]

    # An unknown ORC-25 value is refused, not guessed, and nothing is written.
    before = await counts(demo)
    reply = read_ack(
        await his.send(
            encode(omg("OMG-32", [Order("HIS-ORD-4002", total="3", status_modifier="MAYBE")]))
        )
    )
    assert reply.code == "AE" and reply.err_code == "103"
    assert await counts(demo) == before


async def test_an_order_for_a_new_outpatient_creates_the_patient(
    his: MLLPClient, demo: Services, hl7_config: HL7Config
) -> None:
    newcomer = Person(
        mrn="H700001",
        family="司马",
        given="相如",
        phones=[Phone("PRN", "CP", unformatted="13911114444")],
    )
    reply = read_ack(
        await his.send(encode(omg("OMG-40", [Order("HIS-ORD-5001", total="5")], newcomer)))
    )
    assert reply.code == "AA", reply
    async with demo.db.session() as session:
        patient = (
            await session.execute(sa.select(Patient).where(Patient.mrn == "H700001"))
        ).scalar_one()
    assert patient.name == "司马相如" and demo.cipher.decrypt(patient.phone_enc) == "13911114444"
    created = await order(demo, "HIS-ORD-5001")
    assert created is not None and created.patient_id == patient.id

    # A PID without a name is not enough to create anyone.
    before = await counts(demo)
    nameless = Person(mrn="H700002", family="", given="")
    reply = read_ack(
        await his.send(encode(omg("OMG-41", [Order("HIS-ORD-5002", total="5")], nameless)))
    )
    assert reply.code == "AE" and reply.err_code == "204" and "unknown patient" in reply.text

    # A hospital that wants ADT first: the setting off refuses an unknown patient.
    mapping = HL7Mapping.from_dict(
        {"item_codes": hl7_config.mapping.item_codes, "create_patients_from_orders": False}
    )
    server = build_server(demo, HL7Config(hl7_config.settings, mapping), port=0)
    async with server, MLLPClient("127.0.0.1", server.port, timeout=10) as client:
        reply = read_ack(
            await client.send(
                encode(omg("OMG-42", [Order("HIS-ORD-5003", total="5")], Person(mrn="H700003")))
            )
        )
    assert reply.code == "AE" and reply.err_code == "204"
    assert await counts(demo) == before


async def test_dft_finds_the_order_by_placer_number_first(
    his: MLLPClient, gql: GraphQLClient, demo: Services
) -> None:
    assert (
        read_ack(await his.send(encode(omg("OMG-50", [Order("HIS-ORD-6001", total="10")])))).code
        == "AA"
    )
    assert (
        read_ack(await his.send(encode(omg("OMG-51", [Order("HIS-ORD-6002", total="10")])))).code
        == "AA"
    )
    first, other = await order(demo, "HIS-ORD-6001"), await order(demo, "HIS-ORD-6002")
    assert first is not None and other is not None

    # A charge row says nothing about payment.
    charge = dft("DFT-1", [Charge("CG")], order_number="HIS-ORD-6001")
    assert read_ack(await his.send(encode(charge))).code == "AA"
    assert (await zhou_order(gql, first.id))["paymentStatus"].lower() == "unpaid"  # type: ignore[arg-type]

    # The message's ORC-2 (placer) is HIS-ORD-6001; FT1-23 (filler) names the other order:
    # the placer number wins.
    paid = await his.send(
        encode(
            dft("DFT-2", [Charge("PY", filler_number="HIS-ORD-6002")], order_number="HIS-ORD-6001")
        )
    )
    assert read_ack(paid).code == "AA"
    assert (await zhou_order(gql, first.id))["paymentStatus"].lower() == "paid"  # type: ignore[arg-type]
    assert (await zhou_order(gql, other.id))["paymentStatus"].lower() == "unpaid"  # type: ignore[arg-type]
    # The HIS resends the payment (lost ACK): the same ACK, and no second history event.
    assert (
        await his.send(
            encode(
                dft(
                    "DFT-2",
                    [Charge("PY", filler_number="HIS-ORD-6002")],
                    order_number="HIS-ORD-6001",
                )
            )
        )
        == paid
    )

    # A financial group's own ORC (FINANCIAL_COMMON_ORDER) names its order.
    reply = read_ack(
        await his.send(encode(dft("DFT-3", [Charge("PY", placer_number="HIS-ORD-6002")])))
    )
    assert reply.code == "AA"
    assert (await zhou_order(gql, other.id))["paymentStatus"].lower() == "paid"  # type: ignore[arg-type]

    # No ORC at all: FT1-23 is all there is.
    reply = read_ack(
        await his.send(encode(dft("DFT-4", [Charge("RF", filler_number="HIS-ORD-6001")])))
    )
    assert reply.code == "AA"
    assert (await zhou_order(gql, first.id))["paymentStatus"].lower() == "refunded"  # type: ignore[arg-type]
    payments = [
        (data["from"], data["to"])
        for action, data in await order_events(demo, first.id)  # type: ignore[arg-type]
        if action == "payment_status"
    ]
    assert payments == [("unpaid", "paid"), ("paid", "refunded")]

    # An order of another patient is refused.
    stranger = Person(mrn="H800001", family="钱", given="多")
    assert (
        read_ack(
            await his.send(encode(omg("OMG-52", [Order("HIS-ORD-6003", total="1")], stranger)))
        ).code
        == "AA"
    )
    reply = read_ack(
        await his.send(encode(dft("DFT-5", [Charge("PY")], order_number="HIS-ORD-6003")))
    )
    assert reply.code == "AE" and reply.err_code == "204"


async def test_payment_from_a_z_segment(demo: Services, hl7_config: HL7Config) -> None:
    mapping = HL7Mapping.from_dict(
        {"item_codes": hl7_config.mapping.item_codes, "payment": {"source": "zsegment"}}
    )
    message = omg("OMG-60", [Order("HIS-ORD-7001", total="3")])
    # A site-defined Z-segment, written field by field: ZPY-1 order number, ZPY-2 status.
    raw = encode(message) + b"\rZPY|HIS-ORD-7001|PAID"
    server = build_server(demo, HL7Config(hl7_config.settings, mapping), port=0)
    async with server, MLLPClient("127.0.0.1", server.port, timeout=10) as client:
        assert read_ack(await client.send(raw)).code == "AA"
    created = await order(demo, "HIS-ORD-7001")
    assert created is not None and created.payment_status == "paid"


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
    reply = read_ack(
        await his.send(
            encode(siu("S12", "SIU-1", "HISAPT-1", start=start, order_no="DEMO-P0001-PHYSIO"))
        )
    )
    assert reply.code == "AA", reply
    async with demo.db.session() as session:
        link = (
            await session.execute(
                sa.select(HL7AppointmentLink).where(
                    HL7AppointmentLink.his_appointment_id == "HISAPT-1"
                )
            )
        ).scalar_one()
        booked = await session.get(Appointment, link.appointment_id)
        assert booked is not None and booked.status == "booked" and booked.channel == "his"
        assert booked.slot_id == slot.id
        assert (await session.get(Slot, slot.id)).remaining == slot.remaining - 1  # type: ignore[union-attr]

    assert (
        read_ack(await his.send(encode(siu("S15", "SIU-2", "HISAPT-1", start=start)))).code == "AA"
    )
    async with demo.db.session() as session:
        cancelled = await session.get(Appointment, link.appointment_id)
        assert cancelled is not None and cancelled.status == "cancelled"
        assert (await session.get(Slot, slot.id)).remaining == slot.remaining  # type: ignore[union-attr]

    reply = read_ack(await his.send(encode(siu("S15", "SIU-3", "HISAPT-404", start=start))))
    assert reply.code == "AE" and reply.err_code == "204"
