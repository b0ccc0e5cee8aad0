"""Department walls around the treatment service: a head of general surgery neither reads
rehabilitation's worklists and queues nor runs its consent texts, slots, schedules and
queue. Each refusal is NOT_FOUND (the same as for an id that does not exist) and leaves
every row as it was."""

from __future__ import annotations

import sqlalchemy as sa

from api.models.audit import AccessLog, AccessLogPatient
from api.models.patients import Patient
from api.models.people import Department
from api.models.treatments import ConsentText, QueueEntry, Schedule, Slot
from api.services import Services
from tests.conftest import GraphQLClient, error_code
from tests.treatments.helpers import count, ids, local_today, make_order, make_slot

BOOK = "mutation($s: ID!, $o: ID) { bookAppointment(slotId: $s, orderId: $o) { id queueKey } }"
CHECK_IN = "mutation($a: ID!) { checkIn(appointmentId: $a) { id number status version } }"
WORKLIST = (
    "query($d: Date!, $t: ID) { myWorklist(date: $d, therapistId: $t) { id patient { name mrn } } }"
)
QUEUE = "query($k: String!, $d: Date!) { dayQueue(queueKey: $k, date: $d) { id patient { name allergies } } }"
CALL = "mutation($k: String!) { callNext(queueKey: $k) { id status } }"
SKIP = "mutation($id: ID!) { skipQueueEntry(id: $id) { id position } }"
PUBLISH = 'mutation($c: String!) { publishConsentText(itemCode: $c, title: $c, body: "新的同意书 / new text") { id } }'
DAY_OFF = 'mutation($d: Date!, $s: ID, $t: ID) { addScheduleException(day: $d, reason: "停诊", scheduleId: $s, therapistId: $t) }'
SCHEDULE = """mutation($c: String!, $d: Date!, $t: ID) { createTreatmentSchedule(input: {
  itemCode: $c, startTime: "08:00", endTime: "09:00", validFrom: $d, therapistId: $t,
  room: "普外换药室", weekdays: [0, 1, 2, 3, 4, 5, 6], workingDaysOnly: false
}) { scheduleId slotsCreated } }"""


async def _rehab_queue(gql: GraphQLClient, demo: Services) -> tuple[dict, str, dict]:
    """A rehabilitation patient (P0001) booked with pt.sun today and checked in."""
    sun = await gql.as_user("pt.sun")
    order = await make_order(demo, "P0001", sessions=2)
    slot = await make_slot(demo)
    booked = (await sun.data(BOOK, {"s": str(slot), "o": str(order)}))["bookAppointment"]
    entry = (await sun.data(CHECK_IN, {"a": booked["id"]}))["checkIn"]
    return booked, booked["queueKey"], entry


async def _seen_by(demo: Services, username_id: int, patient_id: int) -> int:
    return await count(
        demo,
        AccessLogPatient,
        AccessLogPatient.patient_id == patient_id,
        AccessLogPatient.access_log_id.in_(
            sa.select(AccessLog.id).where(AccessLog.actor_id == username_id)
        ),
    )


async def test_a_head_reads_no_other_departments_worklist_or_queue(
    gql: GraphQLClient, demo: Services
) -> None:
    known = await ids(demo)
    _, queue_key, entry = await _rehab_queue(gql, demo)
    today = local_today().isoformat()
    wang = await gql.as_user("chief.wang")  # head of general surgery
    sun_id, zhou = str(known["user:pt.sun"]), known["patient:P0001"]
    for therapist in (sun_id, "999999"):  # another department's therapist, or nobody
        err = await wang.error(WORKLIST, {"d": today, "t": therapist})
        assert error_code(err) == "NOT_FOUND" and err["extensions"]["field"] == "therapistId"
    for key in (queue_key, "therapist:" + sun_id):
        assert error_code(await wang.error(QUEUE, {"k": key, "d": today})) == "NOT_FOUND"
    assert await _seen_by(demo, known["user:chief.wang"], zhou) == 0
    # The rehabilitation head sees the same list, and the access log names the patient.
    he = await gql.as_user("chief.he")
    listed = (await he.data(QUEUE, {"k": queue_key, "d": today}))["dayQueue"]
    assert [e["id"] for e in listed] == [entry["id"]] and listed[0]["patient"]["name"] == "周建国"
    worklist = (await he.data(WORKLIST, {"d": today, "t": sun_id}))["myWorklist"]
    assert [a["patient"]["mrn"] for a in worklist] == ["P0001"]
    assert await _seen_by(demo, known["user:chief.he"], zhou) == 2


async def test_a_worklist_leaves_out_patients_of_another_department(
    gql: GraphQLClient, demo: Services
) -> None:
    """A surgery patient booked (by the desk) into a rehabilitation therapist's day: the
    therapist's own worklist and queue do not show them, and nothing logs them as seen."""
    known = await ids(demo)
    admin = await gql.as_user("admin")
    surgery_order = await make_order(demo, "P0002", sessions=1)
    slot = await make_slot(demo, capacity=2)
    booked = (await admin.data(BOOK, {"s": str(slot), "o": str(surgery_order)}))["bookAppointment"]
    await admin.data(CHECK_IN, {"a": booked["id"]})
    sun = await gql.as_user("pt.sun")
    today = local_today().isoformat()
    assert (await sun.data(WORKLIST, {"d": today}))["myWorklist"] == []
    assert (await sun.data(QUEUE, {"k": booked["queueKey"], "d": today}))["dayQueue"] == []
    # Calling the queue does not reach the surgery patient either: nobody waits for sun.
    assert (await sun.data(CALL, {"k": booked["queueKey"]}))["callNext"] is None
    assert await count(demo, QueueEntry, QueueEntry.status == "waiting") == 1
    assert await _seen_by(demo, known["user:pt.sun"], known["patient:P0002"]) == 0


async def test_a_head_cannot_call_or_skip_another_departments_queue(
    gql: GraphQLClient, demo: Services
) -> None:
    _, queue_key, entry = await _rehab_queue(gql, demo)
    wang = await gql.as_user("chief.wang")
    assert error_code(await wang.error(CALL, {"k": queue_key})) == "NOT_FOUND"
    assert error_code(await wang.error(SKIP, {"id": entry["id"]})) == "NOT_FOUND"
    assert error_code(await wang.error(SKIP, {"id": "999999"})) == "NOT_FOUND"
    async with demo.db.session() as session:
        row = await session.get(QueueEntry, int(entry["id"]))
    assert (row.status, row.version, row.skips, row.called_at) == (
        "waiting",
        entry["version"],
        0,
        None,
    )


async def test_a_head_cannot_run_another_departments_service(
    gql: GraphQLClient, demo: Services
) -> None:
    known = await ids(demo)
    wang = await gql.as_user("chief.wang")
    today = local_today().isoformat()
    texts = await count(demo, ConsentText)
    current = await count(demo, ConsentText, ConsentText.is_current.is_(True))
    schedules = await count(demo, Schedule)
    slots = await count(demo, Slot)
    withdrawn = await count(demo, Slot, Slot.cancelled_at.is_not(None))
    async with demo.db.session() as session:
        physio_schedule = (
            await session.execute(
                sa.select(Schedule.id).where(Schedule.item_id == known["item:PHYSIO"]).limit(1)
            )
        ).scalar_one()
    # Every demo item is rehabilitation's; an unknown code answers the same.
    for code in ("PHYSIO", "NO-SUCH-ITEM"):
        assert error_code(await wang.error(PUBLISH, {"c": code})) == "NOT_FOUND"
        assert error_code(await wang.error(SCHEDULE, {"c": code, "d": today})) == "NOT_FOUND"
    for target in ({"s": str(physio_schedule)}, {"t": str(known["user:pt.sun"])}, {"s": "999999"}):
        assert error_code(await wang.error(DAY_OFF, {"d": today, **target})) == "NOT_FOUND"
    assert (
        await count(demo, ConsentText),
        await count(demo, ConsentText, ConsentText.is_current.is_(True)),
        await count(demo, Schedule),
        await count(demo, Slot),
        await count(demo, Slot, Slot.cancelled_at.is_not(None)),
    ) == (texts, current, schedules, slots, withdrawn)
    # Rehabilitation's own head may (the wall is the department, not the role).
    he = await gql.as_user("chief.he")
    assert (await he.data(PUBLISH, {"c": "PHYSIO"}))["publishConsentText"]["id"]
    assert await count(demo, ConsentText) == texts + 1


async def test_a_replay_after_the_patient_moved_department_answers_not_found(
    gql: GraphQLClient, demo: Services
) -> None:
    """The stored first answer is handed back only while the caller may still see it."""
    known = await ids(demo)
    sun = await gql.as_user("pt.sun")
    order = await make_order(demo, "P0001", sessions=2)
    slot = await make_slot(demo)
    booked = (await sun.data(BOOK, {"s": str(slot), "o": str(order)}))["bookAppointment"]
    await sun.data(CHECK_IN, {"a": booked["id"]})
    call = 'mutation($k: String!) { callNext(queueKey: $k, idempotencyKey: "c1") { id patient { name } } }'
    first = (await sun.data(call, {"k": booked["queueKey"]}))["callNext"]
    assert first["patient"]["name"] == "周建国"
    async with demo.db.transaction() as session:  # transferred to general surgery meanwhile
        patient = await session.get(Patient, known["patient:P0001"])
        patient.department_id = (
            await session.execute(sa.select(Department.id).where(Department.code == "GS"))
        ).scalar_one()
    err = await sun.error(call, {"k": booked["queueKey"]})
    assert error_code(err) == "NOT_FOUND" and "周建国" not in str(err)
    async with demo.db.session() as session:
        entry = await session.get(QueueEntry, int(first["id"]))
    assert entry.status == "called" and entry.version == 2
