"""Our appointments reach the HIS as SIU messages, and nothing is lost while it is down."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import hl7
import sqlalchemy as sa
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from api.models.hl7 import HL7Outbound
from api.models.treatments import Slot, TreatmentItem
from api.services import Services
from integrations.hl7.ack import build_ack
from integrations.hl7.config import HL7Config, HL7Mapping, HL7Settings
from integrations.hl7.mllp import MLLPServer
from integrations.hl7.outbound import sync_once
from integrations.hl7.parse import parse_frame
from tests.conftest import GraphQLClient
from tests.hl7.conftest import MAPPING_FILE


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FakeHIS:
    """A local MLLP receiver that answers AA and keeps what it got."""

    def __init__(self, port: int) -> None:
        self.received: list[str] = []
        self.server = MLLPServer(self.receive, host="127.0.0.1", port=port)
        self.mapping = HL7Mapping()

    async def receive(self, frame: bytes) -> bytes:
        self.received.append(frame.decode("utf-8"))
        return build_ack(
            "AA", source=parse_frame(frame, self.mapping), application="HIS", facility="HOSP"
        ).encode()


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


async def outbound_rows(services: Services, appointment_id: int) -> list[HL7Outbound]:
    async with services.db.session() as session:
        return list(
            (
                await session.execute(
                    sa.select(HL7Outbound)
                    .where(HL7Outbound.subject_id == appointment_id)
                    .order_by(HL7Outbound.id)
                )
            ).scalars()
        )


def value(message: str, segment: str, field: int, component: int = 1) -> str:
    parsed = hl7.parse(message)
    return parsed.unescape(
        str(parsed.segment(segment).extract_field(field_num=field, component_num=component))
    )


async def test_appointments_reach_the_his_after_it_comes_back(
    gql: GraphQLClient, demo: Services
) -> None:
    port = free_port()  # nothing listens here yet: the HIS is down
    config = HL7Config(
        HL7Settings(
            his_host="127.0.0.1", his_port=port, send_timeout_seconds=2, mapping_file=MAPPING_FILE
        ),
        HL7Mapping.load(MAPPING_FILE),
    )
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
    assert (
        row.status == "pending"
        and row.attempts == 1
        and row.message_type == "SIU^S12"
        and row.last_error
    )

    # Cancelled while the HIS is still down: queued behind the booking, not sent before it.
    await zhou.data(
        "mutation($id: ID!) { cancelAppointment(id: $id) { id status } }",
        {"id": str(appointment_id)},
    )
    later = now + timedelta(seconds=1)
    assert (await sync_once(demo, config, now=later))["sent"] == 0
    assert [r.message_type for r in await outbound_rows(demo, appointment_id)] == [
        "SIU^S12",
        "SIU^S15",
    ]

    his = FakeHIS(port)
    async with his.server:
        back = await sync_once(demo, config, now=now + timedelta(minutes=30))
    assert back["sent"] >= 2
    rows = await outbound_rows(demo, appointment_id)
    assert [r.status for r in rows] == ["sent", "sent"]
    ours = [m for m in his.received if value(m, "SCH", 2) == str(appointment_id)]
    assert [value(m, "MSH", 9, 2) for m in ours] == ["S12", "S15"]  # in order, each once

    assert value(ours[0], "PID", 3) == "P0001" and value(ours[0], "PID", 5) == "周建国"
    assert value(ours[0], "AIS", 3) == "KF-PT-01"  # our PHYSIO, in the HIS's code
    assert value(ours[1], "SCH", 25) == "Cancelled"
    # What we send is valid v2.5 structure by hl7apy's reading of the standard.
    for message in ours:
        parsed = parse_message(message, validation_level=VALIDATION_LEVEL.STRICT, find_groups=True)
        assert parsed.validate()

    # Nothing more to say: another round queues nothing for this appointment.
    await sync_once(demo, config, now=now + timedelta(hours=1))
    assert len(await outbound_rows(demo, appointment_id)) == 2
