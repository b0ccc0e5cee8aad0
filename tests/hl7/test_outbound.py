"""Our appointments (SIU) and performed sessions (DFT) reach the HIS, validated as v2.5.

The HIS here is a plain asyncio MLLP receiver (framing from HL7 v2.5 Appendix C, MLLP:
<VT> message <FS><CR>) that reads what we send and answers with acknowledgements built
with hl7apy; nothing of `integrations.hl7` is used on the HIS side. Every message we
send is parsed by hl7apy at STRICT validation against its v2.5 structure.
"""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.core import Message
from hl7apy.parser import parse_message

from api.models.hl7 import HL7Outbound
from api.models.treatments import Slot, TreatmentItem, TreatmentOrder
from api.services import Services
from integrations.hl7.config import HL7Config, HL7Mapping, HL7Settings
from integrations.hl7.outbound import sync_once
from tests.conftest import GraphQLClient
from tests.hl7.conftest import MAPPING_FILE
from tests.treatments.helpers import execute_session

START, END = b"\x0b", b"\x1c\r"  # MLLP start block, end block + carriage return
CODECS = {"UNICODE UTF-8": "utf-8", "GB 18030-2000": "gb18030"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def strict(text: str) -> Message:
    """hl7apy's reading of the standard: structure, cardinality, data types, lengths."""
    message = parse_message(
        text, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True, force_validation=True
    )
    assert message.validate()
    return message


class FakeHIS:
    """Receives over MLLP, keeps each message, answers AA in the charset it is told."""

    def __init__(self, port: int, *, charset: str = "UNICODE UTF-8", stale_first: bool = False):
        self.port = port
        self.charset = charset
        self.stale_first = stale_first  # first answer names another control id
        self.received: list[str] = []
        self.server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> FakeHIS:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    def ack(self, control_id: str) -> bytes:
        ack = Message("ACK", version="2.5")
        ack.msh.msh_3.hd_1 = "HIS"  # MSH-3 Sending Application
        ack.msh.msh_5.hd_1 = "BEDSIDE"  # MSH-5 Receiving Application
        ack.msh.msh_7 = "20250301093000+0800"  # MSH-7 Date/Time of Message
        ack.msh.msh_9 = "ACK^S12^ACK"  # MSH-9 Message Type
        ack.msh.msh_10 = f"HIS{len(self.received)}"  # MSH-10 Message Control ID
        ack.msh.msh_11 = "P"  # MSH-11 Processing ID
        ack.msh.msh_12 = "2.5"  # MSH-12 Version ID
        ack.msh.msh_18 = self.charset  # MSH-18 Character Set
        ack.msa.msa_1 = "AA"  # MSA-1 Acknowledgment Code
        ack.msa.msa_2 = control_id  # MSA-2 Message Control ID: the message answered
        ack.msa.msa_3 = "已接收"  # MSA-3 Text Message
        return ack.to_er7().encode(CODECS[self.charset])

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = b""
        try:
            while data := await reader.read(65536):
                buffer += data
                while START in buffer and END in buffer:
                    body, buffer = buffer.split(END, 1)
                    text = body.split(START, 1)[1].decode("utf-8")
                    self.received.append(text)
                    control_id = text.split("\r", 1)[0].split("|")[9]
                    if self.stale_first:
                        self.stale_first = False
                        control_id = "SOMETHING-ELSE"
                    writer.write(START + self.ack(control_id) + END)
                    await writer.drain()
        finally:
            writer.close()


async def first_physio_slot(services: Services) -> Slot:
    async with services.db.session() as session:
        return (
            await session.execute(
                sa.select(Slot)
                .join(TreatmentItem, TreatmentItem.id == Slot.item_id)
                .where(
                    TreatmentItem.code == "PHYSIO",
                    Slot.remaining > 0,
                    Slot.starts_at > datetime.now(UTC) + timedelta(days=1),
                )
                .order_by(Slot.starts_at)
                .limit(1)
            )
        ).scalar_one()


async def outbound_rows(
    services: Services, subject_id: int, subject_type: str = "appointment"
) -> list[HL7Outbound]:
    async with services.db.session() as session:
        return list(
            (
                await session.execute(
                    sa.select(HL7Outbound)
                    .where(
                        HL7Outbound.subject_id == subject_id,
                        HL7Outbound.subject_type == subject_type,
                    )
                    .order_by(HL7Outbound.id)
                )
            ).scalars()
        )


async def item_name(services: Services) -> str:
    async with services.db.session() as session:
        return (
            await session.execute(
                sa.select(TreatmentItem.name).where(TreatmentItem.code == "PHYSIO")
            )
        ).scalar_one()


def his_config(port: int) -> HL7Config:
    return HL7Config(
        HL7Settings(
            his_host="127.0.0.1", his_port=port, send_timeout_seconds=2, mapping_file=MAPPING_FILE
        ),
        HL7Mapping.load(MAPPING_FILE),
    )


def er7(message: Message, path: str) -> str:
    """The ER7 text at `segment.field[.component]`, e.g. "sch.sch_26.ei_1"."""
    node = message
    for part in path.split("."):
        node = getattr(node, part)
    return node.to_er7()


async def test_appointments_reach_the_his_after_it_comes_back(
    gql: GraphQLClient, demo: Services
) -> None:
    port = free_port()  # nothing listens here yet: the HIS is down
    config = his_config(port)
    zhou = await gql.as_user("patient.zhou")
    slot = await first_physio_slot(demo)
    booked = (
        await zhou.data(
            "mutation($s: ID!) { bookAppointment(slotId: $s) { id } }", {"s": str(slot.id)}
        )
    )["bookAppointment"]
    appointment_id = int(booked["id"])

    now = datetime.now(UTC)
    first = await sync_once(demo, config, now=now)
    assert first["sent"] == 0 and first["deferred"] == 1
    [row] = await outbound_rows(demo, appointment_id)
    assert row.status == "pending" and row.attempts == 1 and row.message_type == "SIU^S12"
    assert row.last_error

    # Cancelled while the HIS is still down: queued behind the booking, not sent before it.
    await zhou.data(
        "mutation($id: ID!) { cancelAppointment(id: $id) { id status } }",
        {"id": str(appointment_id)},
    )
    assert (await sync_once(demo, config, now=now + timedelta(seconds=1)))["sent"] == 0
    assert [r.message_type for r in await outbound_rows(demo, appointment_id)] == [
        "SIU^S12",
        "SIU^S15",
    ]

    # The HIS comes back answering in GB 18030 (its MSH-18): the answers are still read.
    async with FakeHIS(port, charset="GB 18030-2000") as his:
        back = await sync_once(demo, config, now=now + timedelta(minutes=30))
    assert back["sent"] >= 2
    assert [r.status for r in await outbound_rows(demo, appointment_id)] == ["sent", "sent"]
    ours = [strict(m) for m in his.received if f"|{appointment_id}^BEDSIDE|" in m]
    assert [er7(m, "msh.msh_9.msg_2") for m in ours] == ["S12", "S15"]  # in order, each once

    s12, s15 = ours
    assert er7(s12, "sch.sch_26.ei_1") == "DEMO-P0001-PHYSIO"  # SCH-26 Placer Order Number
    patient = s12.siu_s12_patient
    assert patient.pid.pid_3.cx_1.to_er7() == "P0001"
    assert patient.pid.pid_5.xpn_1.to_er7() == "周"  # XPN-1 family name
    assert patient.pid.pid_5.xpn_2.to_er7() == "建国"  # XPN-2 given name
    assert patient.pv1.pv1_2.to_er7() == "O"  # PV1-2 Patient Class
    assert patient.pv1.pv1_3.pl_1.to_er7() == "0301"  # our REHAB, in the HIS's ward code
    ais = s12.siu_s12_resources.siu_s12_service.ais
    # AIS-3 coded: identifier^text^coding system; our PHYSIO in the HIS's code.
    assert ais.ais_3.to_er7() == f"KF-PT-01^{await item_name(demo)}^L"
    start = ais.ais_4.to_er7()
    local = slot.starts_at.astimezone(demo.settings.tz)
    assert start == local.strftime("%Y%m%d%H%M%S") + "+0800"  # local time with its offset
    assert er7(s15, "sch.sch_25.ce_1") == "Cancelled"

    # Nothing more to say: another round queues nothing for this appointment.
    await sync_once(demo, config, now=now + timedelta(hours=1))
    assert len(await outbound_rows(demo, appointment_id)) == 2


async def test_an_answer_for_another_message_is_not_taken(
    gql: GraphQLClient, demo: Services
) -> None:
    port = free_port()
    config = his_config(port)
    zhou = await gql.as_user("patient.zhou")
    slot = await first_physio_slot(demo)
    booked = (
        await zhou.data(
            "mutation($s: ID!) { bookAppointment(slotId: $s) { id } }", {"s": str(slot.id)}
        )
    )["bookAppointment"]
    appointment_id = int(booked["id"])
    now = datetime.now(UTC)
    async with FakeHIS(port, stale_first=True) as his:
        first = await sync_once(demo, config, now=now)
        [row] = await outbound_rows(demo, appointment_id)
        # MSA-2 named another control id: not an answer to this message.
        assert first["sent"] == 0 and row.status == "pending" and "MSA-2" in (row.last_error or "")
        again = await sync_once(demo, config, now=now + timedelta(minutes=30))
    assert again["sent"] == 1
    [row] = await outbound_rows(demo, appointment_id)
    assert row.status == "sent"
    assert len(his.received) == 2  # sent twice, answered for it the second time


async def test_each_performed_session_is_charged_once(demo: Services) -> None:
    port = free_port()
    config = his_config(port)
    async with demo.db.session() as session:
        order = (
            await session.execute(
                sa.select(TreatmentOrder).where(TreatmentOrder.his_order_no == "DEMO-P0001-PHYSIO")
            )
        ).scalar_one()
    session_no = order.used_sessions + 1
    now = datetime.now(UTC)
    record_id = await execute_session(demo, therapist="pt.sun", order_id=order.id, at=now)  # type: ignore[arg-type]

    async with FakeHIS(port) as his:
        await sync_once(demo, config, now=now)
        await sync_once(demo, config, now=now + timedelta(minutes=1))  # nothing new to charge
    [row] = await outbound_rows(demo, record_id, "treatment_record")
    assert row.message_type == "DFT^P03" and row.status == "sent"
    [text] = [m for m in his.received if "DFT^P03" in m]
    dft = strict(text)
    financial = dft.dft_p03_financial
    ft1 = financial.ft1
    assert ft1.ft1_6.to_er7() == "CG"  # FT1-6 Transaction Type: charge
    assert ft1.ft1_7.to_er7() == f"KF-PT-01^{await item_name(demo)}^L"  # FT1-7 Transaction Code
    assert ft1.ft1_10.to_er7() == "1"  # FT1-10 Transaction Quantity
    assert f"第 {session_no}/10 次" in ft1.ft1_8.to_er7()  # FT1-8 Transaction Description
    assert ft1.ft1_23.ei_1.to_er7() == str(order.id)  # FT1-23 Filler Order Number: ours
    orc = financial.dft_p03_financial_common_order.orc
    assert orc.orc_2.ei_1.to_er7() == "DEMO-P0001-PHYSIO"  # ORC-2 Placer Order Number
    assert ft1.ft1_4.to_er7().endswith("+0800")
    assert dft.pid.pid_5.to_er7().startswith("周^建国")

    # The record itself goes to the EMR as a document (MDM^T02, send_records="mdm").
    [document_row] = await outbound_rows(demo, record_id, "treatment_record_document")
    assert document_row.message_type == "MDM^T02" and document_row.status == "sent"
    [text] = [m for m in his.received if "MDM^T02" in m]
    mdm = strict(text)
    assert mdm.txa.txa_2.to_er7() == "PN"  # TXA-2 Document Type: progress note
    assert mdm.txa.txa_12.ei_1.to_er7() == str(record_id)  # TXA-12 Unique Document Number
    assert mdm.txa.txa_14.ei_1.to_er7() == "DEMO-P0001-PHYSIO"  # TXA-14 Placer Order Number
    assert mdm.txa.txa_17.to_er7() == "AU"  # TXA-17 Document Completion Status
    lines = [g.obx.obx_5.to_er7() for g in mdm.mdm_t02_observation]
    assert lines[0].endswith(f"第 {session_no}/10 次")
    assert any("中频" in line for line in lines)  # the record's own data (tests/treatments)


async def test_the_record_can_go_to_the_emr_as_a_result(demo: Services) -> None:
    port = free_port()
    config = his_config(port)
    config.settings.send_records = "oru"
    config.settings.send_charges = False
    async with demo.db.session() as session:
        order = (
            await session.execute(
                sa.select(TreatmentOrder).where(TreatmentOrder.his_order_no == "DEMO-P0001-PHYSIO")
            )
        ).scalar_one()
    now = datetime.now(UTC)
    record_id = await execute_session(demo, therapist="pt.sun", order_id=order.id, at=now)  # type: ignore[arg-type]
    async with FakeHIS(port) as his:
        await sync_once(demo, config, now=now)
    assert await outbound_rows(demo, record_id, "treatment_record") == []  # no charge
    [text] = [m for m in his.received if "ORU^R01" in m]
    oru = strict(text)
    result = oru.oru_r01_patient_result
    order_obs = result.oru_r01_order_observation
    assert order_obs.obr.obr_3.ei_1.to_er7() == str(record_id)  # OBR-3 Filler Order Number
    assert order_obs.obr.obr_2.ei_1.to_er7() == "DEMO-P0001-PHYSIO"  # OBR-2 Placer Order Number
    values = [g.obx.obx_5.to_er7() for g in order_obs.oru_r01_observation]
    assert values and all(g.obx.obx_2.to_er7() == "TX" for g in order_obs.oru_r01_observation)


async def test_a_moved_appointment_is_a_valid_s14(gql: GraphQLClient, demo: Services) -> None:
    # S14 (modification) is what a changed start time of the same appointment sends; the
    # message is built as the sender builds it and read by hl7apy at STRICT.
    from api.models.hl7 import HL7AppointmentLink
    from api.models.patients import Patient
    from api.models.people import Department, User
    from api.models.treatments import Appointment
    from integrations.hl7.outbound import siu_message

    zhou = await gql.as_user("patient.zhou")
    slot = await first_physio_slot(demo)
    booked = (
        await zhou.data(
            "mutation($s: ID!) { bookAppointment(slotId: $s) { id } }", {"s": str(slot.id)}
        )
    )["bookAppointment"]
    async with demo.db.session() as session:
        appointment = await session.get(Appointment, int(booked["id"]))
        assert appointment is not None
        patient = await session.get(Patient, appointment.patient_id)
        item = await session.get(TreatmentItem, appointment.item_id)
        order = await session.get(TreatmentOrder, appointment.order_id)
        therapist = (
            await session.get(User, appointment.therapist_id) if appointment.therapist_id else None
        )
        department = await session.get(Department, patient.department_id)  # type: ignore[union-attr]
    link = HL7AppointmentLink(appointment_id=appointment.id, his_appointment_id="HISAPT-9")  # type: ignore[arg-type]
    text = siu_message(
        "S14",
        appointment,
        patient,  # type: ignore[arg-type]
        item,  # type: ignore[arg-type]
        therapist,
        link,
        his_config(free_port()),
        "CTRL-S14",
        tz=demo.settings.tz,
        order=order,
        department=department,
    )
    s14 = strict(text)
    assert er7(s14, "msh.msh_9") == "SIU^S14^SIU_S12"
    assert er7(s14, "sch.sch_1.ei_1") == "HISAPT-9"  # SCH-1 Placer Appointment ID: the HIS's
    assert er7(s14, "sch.sch_26.ei_1") == "DEMO-P0001-PHYSIO"
