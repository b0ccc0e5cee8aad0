"""Who saw patient X: every answer that carries patient data (the mutations that return a
patient, the day's lists) leaves an access-log row naming the patients it returned, and
`accessLog(patientId:)` reads them back for the privacy office only."""

from __future__ import annotations

from api.models.audit import AccessLog, AccessLogPatient
from api.models.base import utcnow
from api.models.treatments import FollowUp
from api.services import Services
from tests.conftest import GraphQLClient, error_code
from tests.treatments.helpers import count, ids, local_today, make_order, make_slot

CREATE = """mutation($p: ID!) { createTreatmentOrder(input: {
  patientId: $p, itemCode: "PHYSIO", sessions: 2, paid: true }) { id patient { name } } }"""
BOOK = "mutation($s: ID!, $o: ID) { bookAppointment(slotId: $s, orderId: $o) { id queueKey patient { name } } }"
CHECK_IN = "mutation($a: ID!) { checkIn(appointmentId: $a) { id } }"
CALL = "mutation($k: String!) { callNext(queueKey: $k) { id patient { name } } }"
ALLERGIES = (
    'mutation($p: ID!) { setPatientAllergies(patientId: $p, allergies: ["青霉素"]) { allergies } }'
)
WORKLIST = "query($d: Date!) { myWorklist(date: $d) { id patient { name } } }"
QUEUE = (
    "query($k: String!, $d: Date!) { dayQueue(queueKey: $k, date: $d, includeDone: true) { id } }"
)
DUE = "query($u: DateTime!) { dueFollowUps(until: $u) { id } }"
LOG = "query($p: ID!) { accessLog(patientId: $p) { action resource actor { username } } }"


async def test_who_saw_a_patient_through_mutations_and_lists(
    gql: GraphQLClient, demo: Services
) -> None:
    known = await ids(demo)
    zhou, chen = str(known["patient:P0001"]), known["patient:P0005"]
    sun = await gql.as_user("pt.sun")
    order = (await sun.data(CREATE, {"p": zhou}))["createTreatmentOrder"]
    slot = await make_slot(demo)
    booked = (await sun.data(BOOK, {"s": str(slot), "o": order["id"]}))["bookAppointment"]
    await sun.data(CHECK_IN, {"a": booked["id"]})
    called = (await sun.data(CALL, {"k": booked["queueKey"]}))["callNext"]
    assert called["patient"]["name"] == "周建国"
    await sun.data(ALLERGIES, {"p": zhou})
    today = local_today().isoformat()
    assert len((await sun.data(WORKLIST, {"d": today}))["myWorklist"]) == 1
    assert len((await sun.data(QUEUE, {"k": booked["queueKey"], "d": today}))["dayQueue"]) == 1
    async with demo.db.transaction() as session:
        session.add(
            FollowUp(
                patient_id=int(zhou),
                item_id=known["item:PHYSIO"],
                source_key="test:access-log",
                due_at=utcnow(),
            )
        )
    assert len((await sun.data(DUE, {"u": "2100-01-01T00:00:00Z"}))["dueFollowUps"]) == 1

    zhao = await gql.as_user("ma.zhao")  # medical affairs: the privacy office
    seen = (await zhao.data(LOG, {"p": zhou}))["accessLog"]
    by_sun = {
        (r["action"], r["resource"]) for r in seen if (r["actor"] or {}).get("username") == "pt.sun"
    }
    assert {
        ("create", "treatment_order"),
        ("book", "appointment"),
        ("call", "queue"),
        ("update", "patient"),
        ("query", "worklist"),
        ("query", "queue"),
        ("query", "follow_ups"),
    } <= by_sun
    # The lists logged the patients they returned, not a count: nobody saw Chen.
    assert (await zhao.data(LOG, {"p": str(chen)}))["accessLog"] == []
    assert await count(demo, AccessLogPatient, AccessLogPatient.patient_id == chen) == 0


async def test_the_access_log_is_the_privacy_offices_to_read(
    gql: GraphQLClient, demo: Services
) -> None:
    known = await ids(demo)
    zhou = str(known["patient:P0001"])
    await make_order(demo, "P0001")
    before = await count(demo, AccessLog)
    for user in ("pt.sun", "chief.he", "patient.zhou"):
        client = await gql.as_user(user)
        assert error_code(await client.error(LOG, {"p": zhou})) == "FORBIDDEN"
    admin = await gql.as_user("admin")
    assert error_code(await admin.error(LOG, {"p": "999999"})) == "NOT_FOUND"
    assert await count(demo, AccessLog) == before  # reading the log is not a patient access
