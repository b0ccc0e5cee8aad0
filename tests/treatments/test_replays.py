"""Replay keys are the caller's own: a HIS order number or an idempotency key of someone
else neither hands back their order (and its patient) nor blocks the caller's command."""

from __future__ import annotations

from api.models.audit import AuditEvent
from api.models.treatments import Appointment, TreatmentOrder
from api.services import Services
from tests.conftest import GraphQLClient, error_code
from tests.treatments.helpers import count, ids, make_order, make_slot

CREATE = """mutation($p: ID!, $h: String, $k: String) { createTreatmentOrder(input: {
  patientId: $p, itemCode: "PHYSIO", sessions: 2, paid: true, hisOrderNo: $h, idempotencyKey: $k
}) { id patient { mrn name } } }"""
BOOK = """mutation($s: ID!, $o: ID, $k: String) {
  bookAppointment(slotId: $s, orderId: $o, idempotencyKey: $k) { id patient { mrn } } }"""


async def test_a_his_order_number_of_another_department_answers_not_found(
    gql: GraphQLClient, demo: Services
) -> None:
    known = await ids(demo)
    wang = await gql.as_user("chief.wang")  # general surgery
    first = (await wang.data(CREATE, {"p": str(known["patient:P0002"]), "h": "HIS-GS-0001"}))[
        "createTreatmentOrder"
    ]
    assert first["patient"]["mrn"] == "P0002"
    orders, events = await count(demo, TreatmentOrder), await count(demo, AuditEvent)
    sun = await gql.as_user("pt.sun")  # rehabilitation
    for patient in (known["patient:P0001"], known["patient:P0002"]):
        err = await sun.error(CREATE, {"p": str(patient), "h": "HIS-GS-0001"})
        assert error_code(err) == "NOT_FOUND" and "张秀英" not in str(err)
    assert (await count(demo, TreatmentOrder), await count(demo, AuditEvent)) == (orders, events)
    # The owner's replay of the number still answers the first order, once.
    again = (await wang.data(CREATE, {"p": str(known["patient:P0002"]), "h": "HIS-GS-0001"}))[
        "createTreatmentOrder"
    ]
    assert again["id"] == first["id"] and await count(demo, TreatmentOrder) == orders
    # The same number for another of the owner's patients is a conflict, not a silent answer.
    other = await wang.error(CREATE, {"p": str(known["patient:P0003"]), "h": "HIS-GS-0001"})
    assert error_code(other) == "CONFLICT" and other["extensions"]["field"] == "hisOrderNo"
    assert await count(demo, TreatmentOrder) == orders


async def test_an_idempotency_key_is_the_callers_own(gql: GraphQLClient, demo: Services) -> None:
    known = await ids(demo)
    wang = await gql.as_user("chief.wang")
    sun = await gql.as_user("pt.sun")
    key = "order-2026-0001"
    surgery = (await wang.data(CREATE, {"p": str(known["patient:P0002"]), "k": key}))[
        "createTreatmentOrder"
    ]
    before = await count(demo, TreatmentOrder)
    # The same key from another user creates that user's order, for that user's patient.
    rehab = (await sun.data(CREATE, {"p": str(known["patient:P0001"]), "k": key}))[
        "createTreatmentOrder"
    ]
    assert rehab["id"] != surgery["id"] and rehab["patient"]["mrn"] == "P0001"
    assert await count(demo, TreatmentOrder) == before + 1
    # Each user's replay answers their own first result and creates nothing.
    assert (await sun.data(CREATE, {"p": str(known["patient:P0001"]), "k": key}))[
        "createTreatmentOrder"
    ]["id"] == rehab["id"]
    assert (await wang.data(CREATE, {"p": str(known["patient:P0002"]), "k": key}))[
        "createTreatmentOrder"
    ]["id"] == surgery["id"]
    assert await count(demo, TreatmentOrder) == before + 1


async def test_one_users_booking_key_does_not_break_anothers_booking(
    gql: GraphQLClient, demo: Services
) -> None:
    zhou_order = await make_order(demo, "P0001", sessions=2)
    chen_order = await make_order(demo, "P0005", sessions=2)
    first_slot, second_slot = await make_slot(demo), await make_slot(demo)
    sun, he = await gql.as_user("pt.sun"), await gql.as_user("chief.he")
    key = "pad-1:booking:1"  # two PADs counting their bookings the same way
    mine = (await sun.data(BOOK, {"s": str(first_slot), "o": str(zhou_order), "k": key}))[
        "bookAppointment"
    ]
    theirs = (await he.data(BOOK, {"s": str(second_slot), "o": str(chen_order), "k": key}))[
        "bookAppointment"
    ]
    assert (mine["patient"]["mrn"], theirs["patient"]["mrn"]) == ("P0001", "P0005")
    assert await count(demo, Appointment, Appointment.order_id == chen_order) == 1
    replay = (await he.data(BOOK, {"s": str(second_slot), "o": str(chen_order), "k": key}))[
        "bookAppointment"
    ]
    assert replay["id"] == theirs["id"]
    assert await count(demo, Appointment, Appointment.order_id.in_([zhou_order, chen_order])) == 2
