"""Rescheduling (seat moved, notices rewritten) and the queue's call-next / skip."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from api.models.notices import Notice
from api.models.treatments import Slot
from api.services import Services
from tests.conftest import GraphQLClient, error_code
from tests.treatments.helpers import ids, local_today, make_order, make_slot

BOOK = (
    "mutation($s: ID!, $o: ID) { bookAppointment(slotId: $s, orderId: $o) { id status receiptNo } }"
)
MOVE = "mutation($id: ID!, $s: ID!) { rescheduleAppointment(id: $id, slotId: $s) { id status startsAt receiptNo } }"


async def _remaining(demo: Services, slot_id: int) -> int:
    async with demo.db.session() as session:
        return int(
            (
                await session.execute(sa.select(Slot.remaining).where(Slot.id == slot_id))
            ).scalar_one()
        )


async def test_reschedule_moves_the_seat_and_the_reminder(
    gql: GraphQLClient, demo: Services
) -> None:
    known = await ids(demo)
    first = await make_slot(demo, starts_in=timedelta(days=2))
    second = await make_slot(demo, starts_in=timedelta(days=3), room="理疗室3")
    sun = await gql.as_user("pt.sun")
    booked = (await sun.data(BOOK, {"s": str(first), "o": str(known["order:zhou"])}))[
        "bookAppointment"
    ]
    zhou = await gql.as_user("patient.zhou")
    moved = (await zhou.data(MOVE, {"id": booked["id"], "s": str(second)}))["rescheduleAppointment"]
    assert moved["id"] != booked["id"] and moved["status"] == "booked"
    assert await _remaining(demo, first) == 1 and await _remaining(demo, second) == 0
    old = (
        await zhou.data(
            "query($id: ID!) { appointment(id: $id) { status cancelReason } }", {"id": booked["id"]}
        )
    )["appointment"]
    assert old["status"] == "cancelled"
    async with demo.db.session() as session:
        notices = (await session.execute(sa.select(Notice).order_by(Notice.id))).scalars().all()
    kinds = [(n.kind, n.subject_id, n.cancelled_at is None) for n in notices]
    assert ("appointment.booked", int(booked["id"]), True) in kinds
    assert (
        "appointment.reminder",
        int(booked["id"]),
        False,
    ) in kinds  # the old reminder is withdrawn
    assert ("appointment.rescheduled", int(moved["id"]), True) in kinds
    assert ("appointment.reminder", int(moved["id"]), True) in kinds
    reminder = next(
        n for n in notices if n.kind == "appointment.reminder" and n.subject_id == int(moved["id"])
    )
    assert "deliver_after" in reminder.payload
    # A full slot refuses the move and the patient keeps the appointment they have.
    other = await make_slot(demo, starts_in=timedelta(days=4), room="理疗室4")
    await sun.data(BOOK, {"s": str(other), "o": str(await make_order(demo, "P0005"))})
    err = await zhou.error(MOVE, {"id": moved["id"], "s": str(other)})
    assert error_code(err) == "FULLY_BOOKED"
    still = (
        await zhou.data("query($id: ID!) { appointment(id: $id) { status } }", {"id": moved["id"]})
    )["appointment"]
    assert still["status"] == "booked" and await _remaining(demo, second) == 0


async def test_call_next_and_skip_keep_the_ticket_and_move_it_to_the_end(
    gql: GraphQLClient, demo: Services
) -> None:
    sun = await gql.as_user("pt.sun")
    walk_in = 'mutation($o: ID!) { registerWalkIn(orderId: $o, room: "理疗室1") { id status } }'
    a = (await sun.data(walk_in, {"o": str(await make_order(demo, "P0005"))}))["registerWalkIn"]
    b = (await sun.data(walk_in, {"o": str(await make_order(demo, "P0001"))}))["registerWalkIn"]
    call = 'mutation { callNext(queueKey: "room:理疗室1") { id number status version appointment { id status } } }'
    first = (await sun.data(call))["callNext"]
    assert first["number"] == 1 and first["appointment"] == {"id": a["id"], "status": "checked-in"}
    skipped = (
        await sun.data(
            "mutation($id: ID!, $v: Int) { skipQueueEntry(id: $id, expectedVersion: $v) { number position status skips } }",
            {"id": first["id"], "v": first["version"]},
        )
    )["skipQueueEntry"]
    assert skipped == {"number": 1, "position": 3, "status": "waiting", "skips": 1}
    second = (await sun.data(call))["callNext"]
    assert second["number"] == 2 and second["appointment"]["id"] == b["id"]
    queue = (
        await sun.data(
            'query($d: Date!) { dayQueue(queueKey: "room:理疗室1", date: $d) { number status } }',
            {"d": local_today().isoformat()},
        )
    )["dayQueue"]
    assert queue == [{"number": 2, "status": "called"}, {"number": 1, "status": "waiting"}]
    third = (await sun.data(call))["callNext"]
    assert third["number"] == 1
    assert (await sun.data(call))["callNext"] is None


async def test_booking_refusals_name_the_field_and_take_no_seat(
    gql: GraphQLClient, demo: Services
) -> None:
    sun = await gql.as_user("pt.sun")
    physio_order = str(await make_order(demo, "P0005", sessions=1))
    laser_slot = await make_slot(
        demo, item_code="LASER", starts_in=timedelta(days=1), room="激光室2"
    )
    err = await sun.error(BOOK, {"s": str(laser_slot), "o": physio_order})
    assert error_code(err) == "VALIDATION" and err["extensions"]["field"] == "slotId"
    past = await make_slot(demo, starts_in=timedelta(minutes=-10), room="理疗室5")
    err = await sun.error(BOOK, {"s": str(past), "o": physio_order})
    assert error_code(err) == "SLOT_PASSED"
    assert await _remaining(demo, laser_slot) == 1 and await _remaining(demo, past) == 1
    ok = await make_slot(demo, starts_in=timedelta(days=1), room="理疗室6")
    await sun.data(BOOK, {"s": str(ok), "o": physio_order})
    another = await make_slot(demo, starts_in=timedelta(days=2), room="理疗室7")
    err = await sun.error(BOOK, {"s": str(another), "o": physio_order})
    assert error_code(err) == "NO_SESSIONS_LEFT" and err["extensions"]["field"] == "orderId"
    fresh = str(await make_order(demo, "P0005", sessions=1))
    assert error_code(await sun.error(BOOK, {"s": "999999", "o": fresh})) == "NOT_FOUND"


async def test_waitlist_gets_the_freed_seat_and_expires_when_the_slot_begins(
    gql: GraphQLClient, demo: Services
) -> None:
    from api.domain.treatments.appointments import mark_no_shows

    slot = await make_slot(demo, starts_in=timedelta(days=1), room="理疗室8")
    sun = await gql.as_user("pt.sun")
    first = (await sun.data(BOOK, {"s": str(slot), "o": str(await make_order(demo, "P0005"))}))[
        "bookAppointment"
    ]
    zhou = await gql.as_user("patient.zhou")
    wait = "mutation($s: ID!) { joinWaitlist(slotId: $s) { id status receiptNo } }"
    waiting = (await zhou.data(wait, {"s": str(slot)}))["joinWaitlist"]
    assert waiting["status"] == "waitlist" and waiting["receiptNo"] == ""
    assert error_code(await zhou.error(wait, {"s": str(slot)})) == "CONFLICT"  # once is enough
    await sun.data(
        "mutation($id: ID!) { cancelAppointment(id: $id) { status } }", {"id": first["id"]}
    )
    promoted = (
        await zhou.data(
            "query($id: ID!) { appointment(id: $id) { status receiptNo } }", {"id": waiting["id"]}
        )
    )["appointment"]
    assert promoted["status"] == "booked" and promoted["receiptNo"]
    assert await _remaining(demo, slot) == 0
    async with demo.db.session() as session:
        notice = (
            await session.execute(
                sa.select(Notice).where(
                    Notice.subject_id == int(waiting["id"]), Notice.kind == "appointment.booked"
                )
            )
        ).scalar_one()
    assert notice.payload["from_waitlist"] is True
    # A waitlist entry whose slot has begun is closed by the sweep.
    other = await make_slot(demo, starts_in=timedelta(days=2), room="理疗室9")
    await sun.data(BOOK, {"s": str(other), "o": str(await make_order(demo, "P0005"))})
    late = (await zhou.data(wait, {"s": str(other)}))["joinWaitlist"]
    async with demo.db.session() as session:
        begins = (
            await session.execute(sa.select(Slot.starts_at).where(Slot.id == other))
        ).scalar_one()
    async with demo.db.transaction() as session:
        await mark_no_shows(session, now=begins + timedelta(minutes=1))
    closed = (
        await zhou.data(
            "query($id: ID!) { appointment(id: $id) { status cancelReason } }", {"id": late["id"]}
        )
    )["appointment"]
    assert closed["status"] == "cancelled" and "waitlist" in closed["cancelReason"]


async def test_concurrent_check_ins_get_distinct_ticket_numbers(
    gql: GraphQLClient, demo: Services
) -> None:
    import asyncio

    sun = await gql.as_user("pt.sun")
    appointments = []
    for n in range(8):
        slot = await make_slot(demo, starts_in=timedelta(minutes=5 + n), room="理疗室10")
        appointments.append(
            (await sun.data(BOOK, {"s": str(slot), "o": str(await make_order(demo, "P0005"))}))[
                "bookAppointment"
            ]["id"]
        )
    check_in = "mutation($a: ID!) { checkIn(appointmentId: $a) { number } }"
    results = await asyncio.gather(*(sun.data(check_in, {"a": a}) for a in appointments))
    assert sorted(r["checkIn"]["number"] for r in results) == list(range(1, 9))


async def test_a_patient_cannot_cancel_once_the_appointment_has_begun(
    gql: GraphQLClient, demo: Services
) -> None:
    from datetime import UTC, datetime

    from api.auth import SYSTEM_ACTOR
    from api.domain.treatments.appointments import book_appointment

    known = await ids(demo)
    slot = await make_slot(demo, starts_in=timedelta(minutes=-5), room="理疗室11")
    async with demo.db.transaction() as session:
        booked = await book_appointment(
            session,
            slot,
            actor=SYSTEM_ACTOR,
            order_id=known["order:zhou"],
            now=datetime.now(UTC) - timedelta(hours=1),
        )
    zhou = await gql.as_user("patient.zhou")
    cancel = "mutation($id: ID!) { cancelAppointment(id: $id) { status } }"
    assert error_code(await zhou.error(cancel, {"id": str(booked.id)})) == "CONFLICT"
    sun = await gql.as_user("pt.sun")
    assert (await sun.data(cancel, {"id": str(booked.id)}))["cancelAppointment"][
        "status"
    ] == "cancelled"
