"""The whole flow over GraphQL/HTTP: order → booking → check-in → queue → 确费 → photos →
consent → records → archive (counted once) → follow-up answered."""

from __future__ import annotations

from datetime import timedelta

import httpx
import sqlalchemy as sa

from api.models.notices import Notice
from api.models.treatments import Slot, TreatmentOrder
from api.services import Services
from tests.conftest import GraphQLClient, error_code
from tests.treatments.helpers import count, ids, local_today, make_slot, png_bytes

ITEMS = "{ treatmentItems { code name notes durationMinutes recordTemplate assessmentTemplate currentConsent { id sha256 version } } }"
CREATE = "mutation($i: CreateTreatmentOrderInput!) { createTreatmentOrder(input: $i) { id remainingSessions paymentStatus item { code } } }"
MY_ORDERS = "{ myOrders { id item { code } remainingSessions paymentStatus } }"
SLOTS = "query($c: String!, $f: Date!, $t: Date!) { availableSlots(itemCode: $c, from: $f, to: $t) { id startsAt remaining } }"
BOOK = "mutation($s: ID!, $o: ID) { bookAppointment(slotId: $s, orderId: $o) { id status channel receiptNo receipt version } }"
CANCEL = "mutation($id: ID!) { cancelAppointment(id: $id) { id status version } }"


async def upload(
    http: httpx.AsyncClient, token: str, data: bytes, content_type: str = "image/png"
) -> httpx.Response:
    return await http.post(
        "/attachments",
        files={"file": ("x.png", data, content_type)},
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_patient_books_and_cancels_through_the_official_account(
    gql: GraphQLClient, demo: Services
) -> None:
    zhou = await gql.as_user("patient.zhou")
    orders = (await zhou.data(MY_ORDERS))["myOrders"]
    assert orders == [
        {
            "id": orders[0]["id"],
            "item": {"code": "PHYSIO"},
            "remainingSessions": 10,
            "paymentStatus": "PAID",
        }
    ]
    today = local_today()
    slots = (
        await zhou.data(
            SLOTS,
            {"c": "PHYSIO", "f": today.isoformat(), "t": (today + timedelta(days=14)).isoformat()},
        )
    )["availableSlots"]
    assert len(slots) > 20 and all(s["remaining"] == 2 for s in slots)
    booked = (await zhou.data(BOOK, {"s": slots[0]["id"]}))["bookAppointment"]
    assert booked["status"] == "booked" and booked["channel"] == "official_account"
    assert "注意事项" in booked["receipt"]["text"] and booked["receipt"]["notes"]
    async with demo.db.session() as session:
        kinds = sorted(n.kind for n in (await session.execute(sa.select(Notice))).scalars())
        remaining = (
            await session.execute(sa.select(Slot.remaining).where(Slot.id == int(slots[0]["id"])))
        ).scalar_one()
    assert "appointment.booked" in kinds and remaining == 1
    cancelled = (await zhou.data(CANCEL, {"id": booked["id"]}))["cancelAppointment"]
    assert cancelled["status"] == "cancelled" and cancelled["version"] == booked["version"] + 1
    async with demo.db.session() as session:
        remaining = (
            await session.execute(sa.select(Slot.remaining).where(Slot.id == int(slots[0]["id"])))
        ).scalar_one()
        reminder = (
            (await session.execute(sa.select(Notice).where(Notice.kind == "appointment.reminder")))
            .scalars()
            .all()
        )
        cancel_notice = (
            (await session.execute(sa.select(Notice).where(Notice.kind == "appointment.cancelled")))
            .scalars()
            .all()
        )
    assert remaining == 2
    assert all(r.cancelled_at is not None for r in reminder) and len(cancel_notice) == 1
    # Another patient cannot cancel or book on zhou's order.
    sun = await gql.as_user("pt.sun")
    err = await sun.error(BOOK, {"s": slots[1]["id"]})
    assert error_code(err) == "VALIDATION" and err["extensions"]["field"] == "orderId"


async def test_whole_bedside_flow(
    gql: GraphQLClient, demo: Services, http: httpx.AsyncClient
) -> None:
    known = await ids(demo)
    sun = await gql.as_user("pt.sun")
    items = {i["code"]: i for i in (await sun.data(ITEMS))["treatmentItems"]}
    assert {"ACUP", "PHYSIO", "LASER", "DRESS"} <= set(items)
    order = (
        await sun.data(
            CREATE,
            {
                "i": {
                    "patientId": str(known["patient:P0005"]),
                    "itemCode": "PHYSIO",
                    "sessions": 2,
                    "paid": True,
                }
            },
        )
    )["createTreatmentOrder"]
    assert order["remainingSessions"] == 2 and order["paymentStatus"] == "PAID"

    slot_id = await make_slot(demo)
    appointment = (await sun.data(BOOK, {"s": str(slot_id), "o": order["id"]}))["bookAppointment"]
    assert appointment["channel"] == "admin"
    entry = (
        await sun.data(
            "mutation($a: ID!) { checkIn(appointmentId: $a) { id number queueKey status } }",
            {"a": appointment["id"]},
        )
    )["checkIn"]
    assert entry["number"] == 1 and entry["status"] == "waiting"
    queue = (
        await sun.data(
            "query($k: String!, $d: Date!) { dayQueue(queueKey: $k, date: $d) { number patient { maskedName idNumber } } }",
            {"k": entry["queueKey"], "d": local_today().isoformat()},
        )
    )["dayQueue"]
    assert len(queue) == 1 and "*" in queue[0]["patient"]["idNumber"]
    called = (
        await sun.data(
            "mutation($k: String!) { callNext(queueKey: $k) { id status appointment { status } } }",
            {"k": entry["queueKey"]},
        )
    )["callNext"]
    assert called["status"] == "called" and called["appointment"]["status"] == "checked-in"

    record = (
        await sun.data(
            "mutation($a: ID!) { startTreatment(appointmentId: $a) { id status version } }",
            {"a": appointment["id"]},
        )
    )["startTreatment"]
    token = sun.token
    assert token
    photos = []
    for color in ("red", "blue", "black"):
        response = await upload(http, token, png_bytes(color))
        assert response.status_code == 201, response.text
        photos.append(response.json()["key"])
    for key, phase in zip(photos[:2], ("before", "after"), strict=True):
        await sun.data(
            "mutation($r: ID!, $k: String!, $p: String!) { attachPhoto(recordId: $r, attachmentKey: $k, phase: $p) { purpose } }",
            {"r": record["id"], "k": key, "p": phase},
        )
    consent = items["PHYSIO"]["currentConsent"]
    signed = (
        await sun.data(
            'mutation($r: ID!, $c: ID!, $h: String!, $s: String!) { signConsent(recordId: $r, consentTextId: $c, textSha256: $h, signatureKey: $s, signerName: "周") { bindingSha256 textSha256 } }',
            {"r": record["id"], "c": consent["id"], "h": consent["sha256"], "s": photos[2]},
        )
    )["signConsent"]
    assert signed["textSha256"] == consent["sha256"] and len(signed["bindingSha256"]) == 64

    save = "mutation($r: ID!, $d: JSON!, $v: Int) { saveTreatmentRecord(recordId: $r, data: $d, expectedVersion: $v) { version data } }"
    bad = await sun.error(
        save, {"r": record["id"], "d": {"modality": "魔法 magic", "minutes": 500}}
    )
    assert error_code(bad) == "VALIDATION" and set(bad["extensions"]["errors"]) == {
        "data.modality",
        "data.minutes",
    }
    version = (
        await sun.data(
            "query($id: ID!) { treatmentRecord(id: $id) { version } }", {"id": record["id"]}
        )
    )["treatmentRecord"]["version"]
    assert version == record["version"] + 2  # each attached photo is an edit of the record
    saved = (
        await sun.data(
            save,
            {
                "r": record["id"],
                "d": {"modality": "中频 IF", "minutes": 20, "reaction": "无 none"},
                "v": version,
            },
        )
    )["saveTreatmentRecord"]
    stale = await sun.error(save, {"r": record["id"], "d": {"modality": "中频 IF"}, "v": version})
    assert error_code(stale) == "STALE_VERSION" and saved["version"] == version + 1
    archive = "mutation($r: ID!) { archiveTreatment(recordId: $r) { status archivedAt } }"
    missing = await sun.error(archive, {"r": record["id"]})
    assert error_code(missing) == "VALIDATION" and missing["extensions"]["field"] == "assessment"
    await sun.data(
        "mutation($r: ID!, $d: JSON!) { saveAssessment(recordId: $r, data: $d) { version } }",
        {"r": record["id"], "d": {"pain_score": 3, "rom": 95}},
    )
    archived = (await sun.data(archive, {"r": record["id"]}))["archiveTreatment"]
    assert archived["status"] == "archived"
    await sun.data(archive, {"r": record["id"]})  # a replay counts nothing
    async with demo.db.session() as session:
        used = (
            await session.execute(
                sa.select(TreatmentOrder.used_sessions).where(TreatmentOrder.id == int(order["id"]))
            )
        ).scalar_one()
    assert used == 1

    full = (
        await sun.data(
            "query($id: ID!) { treatmentRecord(id: $id) { attachments { purpose } consent { signerName } assessment { data } } }",
            {"id": record["id"]},
        )
    )["treatmentRecord"]
    assert sorted(a["purpose"] for a in full["attachments"]) == ["after", "before", "signature"]
    worklist = (
        await sun.data(
            "query($d: Date!) { myWorklist(date: $d) { id status queueKey patient { maskedName } } }",
            {"d": local_today().isoformat()},
        )
    )["myWorklist"]
    assert [(w["status"], w["queueKey"]) for w in worklist if w["id"] == appointment["id"]] == [
        ("fulfilled", entry["queueKey"])
    ]
    assert (
        await count(demo, Notice, Notice.kind == "appointment.booked") == 0
    )  # P0005 has no account to notify


async def test_course_completion_creates_follow_up_the_patient_answers(
    gql: GraphQLClient, demo: Services
) -> None:
    """zhou's physiotherapy: merge a second order into a course, finish it, answer the follow-up."""
    known = await ids(demo)
    sun = await gql.as_user("pt.sun")
    extra = (
        await sun.data(
            CREATE,
            {
                "i": {
                    "patientId": str(known["patient:P0001"]),
                    "itemCode": "PHYSIO",
                    "sessions": 1,
                    "paid": True,
                }
            },
        )
    )["createTreatmentOrder"]
    merged = (
        await sun.data(
            "mutation($ids: [ID!]!) { mergeTreatmentOrders(orderIds: $ids) { id courseId } }",
            {"ids": [str(known["order:zhou"]), extra["id"]]},
        )
    )["mergeTreatmentOrders"]
    assert len({m["courseId"] for m in merged}) == 1 and merged[0]["courseId"]
    # Use up all 11 sessions of the course quickly through walk-ins.
    for _ in range(11):
        walk_in = (
            await sun.data(
                "mutation($o: ID!) { registerWalkIn(orderId: $o) { id status walkIn } }",
                {"o": str(known["order:zhou"]) if _ < 10 else extra["id"]},
            )
        )["registerWalkIn"]
        assert walk_in["status"] == "arrived" and walk_in["walkIn"]
        record = (
            await sun.data(
                "mutation($a: ID!) { startTreatment(appointmentId: $a) { id } }",
                {"a": walk_in["id"]},
            )
        )["startTreatment"]
        await _complete(demo, sun, record["id"])
    zhou = await gql.as_user("patient.zhou")
    remaining = {o["id"]: o["remainingSessions"] for o in (await zhou.data(MY_ORDERS))["myOrders"]}
    assert remaining == {str(known["order:zhou"]): 0, extra["id"]: 0}
    follow_ups = (await zhou.data("{ myFollowUps { id status questionnaire dueAt } }"))[
        "myFollowUps"
    ]
    assert len(follow_ups) == 2  # 7 and 30 days after the course
    answer = (
        "mutation($id: ID!, $a: JSON!) { answerFollowUp(id: $id, answers: $a) { status answers } }"
    )
    bad = await zhou.error(answer, {"id": follow_ups[0]["id"], "a": {"improved": "明显 much"}})
    assert error_code(bad) == "VALIDATION" and bad["extensions"]["field"] == "answers.pain_score"
    done = (
        await zhou.data(
            answer, {"id": follow_ups[0]["id"], "a": {"improved": "明显 much", "pain_score": 2}}
        )
    )["answerFollowUp"]
    assert done["status"] == "answered"
    assert (
        error_code(
            await zhou.error(
                answer, {"id": follow_ups[0]["id"], "a": {"improved": "无 none", "pain_score": 5}}
            )
        )
        == "ALREADY_DECIDED"
    )
    # Staff see what is still open; the archive shows the whole history with allergies.
    due = (
        await sun.data(
            "query($u: DateTime!) { dueFollowUps(until: $u) { id status } }",
            {"u": "2100-01-01T00:00:00Z"},
        )
    )["dueFollowUps"]
    assert [d["id"] for d in due] == [follow_ups[1]["id"]]
    await sun.data(
        'mutation($p: ID!) { setPatientAllergies(patientId: $p, allergies: ["青霉素 penicillin", " "]) { allergies } }',
        {"p": str(known["patient:P0001"])},
    )
    archive = (
        await zhou.data(
            "{ treatmentArchive { patient { allergies } orders { id } records { status } followUps { status } } }"
        )
    )["treatmentArchive"]
    assert archive["patient"]["allergies"] == ["青霉素 penicillin"]
    assert len(archive["records"]) == 11 and {r["status"] for r in archive["records"]} == {
        "archived"
    }
    assert sorted(f["status"] for f in archive["followUps"]) == ["answered", "open"]


async def _complete(demo: Services, client: GraphQLClient, record_id: str) -> None:
    """Consent (an uploaded signature), record and assessment, then archive."""
    import hashlib

    from api.models.treatments import Attachment

    async with demo.db.transaction() as session:
        key = f"test/{record_id}.png"
        session.add(
            Attachment(
                key=key,
                sha256=hashlib.sha256(key.encode()).hexdigest(),
                content_type="image/png",
                size=1,
            )
        )
    items = {i["code"]: i for i in (await client.data(ITEMS))["treatmentItems"]}
    consent = items["PHYSIO"]["currentConsent"]
    await client.data(
        "mutation($r: ID!, $c: ID!, $h: String!, $s: String!) { signConsent(recordId: $r, consentTextId: $c, textSha256: $h, signatureKey: $s) { id } }",
        {"r": record_id, "c": consent["id"], "h": consent["sha256"], "s": key},
    )
    await client.data(
        "mutation($r: ID!, $d: JSON!) { saveTreatmentRecord(recordId: $r, data: $d) { id } }",
        {"r": record_id, "d": {"modality": "牵引 traction", "minutes": 15, "reaction": "无 none"}},
    )
    await client.data(
        "mutation($r: ID!, $d: JSON!) { saveAssessment(recordId: $r, data: $d) { id } }",
        {"r": record_id, "d": {"pain_score": 2}},
    )
    await client.data(
        "mutation($r: ID!) { archiveTreatment(recordId: $r) { status } }", {"r": record_id}
    )
