"""预约后可打印回执单: the booking receipt as a PDF, to the patient who owns the appointment
(and the staff who may see the patient), every copy an export in the access log."""

from __future__ import annotations

import base64

from api.models.audit import AccessLog
from api.services import Services
from tests.conftest import GraphQLClient, error_code
from tests.surgery.test_routing import pdf_text
from tests.treatments.helpers import count, ids, make_slot

BOOK = "mutation($s: ID!, $o: ID) { bookAppointment(slotId: $s, orderId: $o) { id receiptNo } }"
RECEIPT = "query($id: ID!) { appointmentReceipt(id: $id) { filename contentType sizeBytes contentBase64 } }"
CREATE = """mutation($p: ID!) { createTreatmentOrder(input: {
  patientId: $p, itemCode: "PHYSIO", sessions: 2, paid: true }) { id } }"""


async def test_the_patient_prints_their_receipt(gql: GraphQLClient, demo: Services) -> None:
    known = await ids(demo)
    zhou = await gql.as_user("patient.zhou")
    slot = await make_slot(demo, room="理疗室2 Physio 2")
    booked = (await zhou.data(BOOK, {"s": str(slot), "o": str(known["order:zhou"])}))[
        "bookAppointment"
    ]
    before = await count(demo, AccessLog, AccessLog.resource == "appointment_receipt")

    receipt = (await zhou.data(RECEIPT, {"id": booked["id"]}))["appointmentReceipt"]
    pdf = base64.b64decode(receipt["contentBase64"])
    assert receipt["contentType"] == "application/pdf"
    assert receipt["sizeBytes"] == len(pdf) and pdf.startswith(b"%PDF-")
    assert receipt["filename"] == f"receipt-{booked['receiptNo']}.pdf"
    text = "".join((await pdf_text(pdf)).split())
    for expected in (
        "治疗预约回执单",
        booked["receiptNo"],
        "周建国",  # the demo's patient.zhou (P0001)
        "理疗",
        "理疗室2",
        "孙治疗师",  # the slot's therapist, pt.sun
        "门诊楼3层",  # how to get there (the item's location)
        "请提前10分钟",  # the item's notes, in Chinese only
    ):
        assert expected in text, expected
    assert "arrive" not in text and "No." not in text
    assert await count(demo, AccessLog, AccessLog.resource == "appointment_receipt") == before + 1


async def test_another_patients_receipt_is_not_there(gql: GraphQLClient, demo: Services) -> None:
    known = await ids(demo)
    sun = await gql.as_user("pt.sun")
    order = (await sun.data(CREATE, {"p": str(known["patient:P0005"])}))["createTreatmentOrder"]
    slot = await make_slot(demo)
    other = (await sun.data(BOOK, {"s": str(slot), "o": order["id"]}))["bookAppointment"]
    before = await count(demo, AccessLog, AccessLog.resource == "appointment_receipt")

    for username in ("patient.zhou", "dr.li"):  # another patient; another department
        body = await (await gql.as_user(username)).execute(RECEIPT, {"id": other["id"]})
        assert error_code(body["errors"][0]) == "NOT_FOUND" and body.get("data") is None
    missing = await (await gql.as_user("patient.zhou")).error(RECEIPT, {"id": "999999"})
    assert error_code(missing) == "NOT_FOUND"
    assert await count(demo, AccessLog, AccessLog.resource == "appointment_receipt") == before
