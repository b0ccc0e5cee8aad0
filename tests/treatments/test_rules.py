"""The rules that must hold: no overbooking, 确费, consent versions, department walls,
recurring series, no-shows with an injected clock."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import sqlalchemy as sa

from api.domain.treatments.appointments import mark_no_shows
from api.models.audit import AccessLog
from api.models.patients import Patient
from api.models.treatments import (
    Appointment,
    Attachment,
    ConsentSignature,
    Slot,
    TreatmentOrder,
    TreatmentRecord,
)
from api.services import Services
from tests.conftest import GraphQLClient, error_code
from tests.treatments.helpers import count, ids, local_today, make_order, make_slot

BOOK = (
    "mutation($s: ID!, $o: ID) { bookAppointment(slotId: $s, orderId: $o) { id status version } }"
)
WALK_IN = "mutation($o: ID!) { registerWalkIn(orderId: $o) { id } }"
START = "mutation($a: ID!) { startTreatment(appointmentId: $a) { id status } }"


async def test_fifty_concurrent_bookings_of_the_last_seat_one_wins(
    gql: GraphQLClient, demo: Services
) -> None:
    async with demo.db.transaction() as session:
        rehab = (
            await session.execute(sa.select(Patient.department_id).where(Patient.mrn == "P0005"))
        ).scalar_one()
        for n in range(50):
            session.add(Patient(mrn=f"C{n:04d}", name=f"并发{n}", department_id=rehab))
    orders = [await make_order(demo, f"C{n:04d}", sessions=1) for n in range(50)]
    slot_id = await make_slot(demo, capacity=3, starts_in=timedelta(days=1))
    sun = await gql.as_user("pt.sun")
    for early in (await make_order(demo, "P0005"), await make_order(demo, "P0001")):
        await sun.data(BOOK, {"s": str(slot_id), "o": str(early)})  # two seats gone, one left

    results = await asyncio.gather(
        *(sun.execute(BOOK, {"s": str(slot_id), "o": str(o)}) for o in orders)
    )
    winners = [r for r in results if not r.get("errors")]
    losers = [r["errors"][0]["extensions"]["code"] for r in results if r.get("errors")]
    assert len(winners) == 1
    assert losers == ["FULLY_BOOKED"] * 49
    async with demo.db.session() as session:
        remaining = (
            await session.execute(sa.select(Slot.remaining).where(Slot.id == slot_id))
        ).scalar_one()
        held = (
            await session.execute(
                sa.select(sa.func.count()).where(
                    Appointment.slot_id == slot_id, Appointment.status == "booked"
                )
            )
        ).scalar_one()
    assert remaining == 0 and held == 3


async def test_executing_an_unpaid_order_is_refused_and_writes_nothing(
    gql: GraphQLClient, demo: Services
) -> None:
    order_id = await make_order(demo, "P0005", sessions=2, paid=False)
    sun = await gql.as_user("pt.sun")
    appointment = (await sun.data(WALK_IN, {"o": str(order_id)}))["registerWalkIn"]
    before = (
        await sun.data(
            "query($id: ID!) { appointment(id: $id) { status version } }", {"id": appointment["id"]}
        )
    )["appointment"]
    err = await sun.error(START, {"a": appointment["id"]})
    assert error_code(err) == "NOT_PAID" and "未缴费" in err["message"]
    assert await count(demo, TreatmentRecord) == 0
    after = (
        await sun.data(
            "query($id: ID!) { appointment(id: $id) { status version } }", {"id": appointment["id"]}
        )
    )["appointment"]
    assert after == before
    # Paid at the HIS window: the same appointment can now be treated.
    paid = await sun.data(
        "mutation($o: ID!) { setOrderPaymentStatus(orderId: $o, status: PAID) { paymentStatus } }",
        {"o": str(order_id)},
    )
    assert paid["setOrderPaymentStatus"]["paymentStatus"] == "PAID"
    assert (await sun.data(START, {"a": appointment["id"]}))["startTreatment"]["status"] == "draft"


async def test_consent_signed_against_an_old_text_version_is_refused(
    gql: GraphQLClient, demo: Services
) -> None:
    sun = await gql.as_user("pt.sun")
    items = {
        i["code"]: i
        for i in (
            await sun.data("{ treatmentItems { code currentConsent { id sha256 version } } }")
        )["treatmentItems"]
    }
    old = items["PHYSIO"]["currentConsent"]
    order_id = await make_order(demo, "P0005")
    appointment = (await sun.data(WALK_IN, {"o": str(order_id)}))["registerWalkIn"]
    record = (await sun.data(START, {"a": appointment["id"]}))["startTreatment"]
    async with demo.db.transaction() as session:
        session.add(
            Attachment(key="test/sig.png", sha256="a" * 64, content_type="image/png", size=1)
        )
    head = await gql.as_user("chief.he")
    new = (
        await head.data(
            'mutation { publishConsentText(itemCode: "PHYSIO", title: "理疗知情同意书 v2", body: "新增：治疗中如有不适请立即告知。") { id version sha256 } }'
        )
    )["publishConsentText"]
    assert new["version"] == old["version"] + 1

    sign = 'mutation($r: ID!, $c: ID!, $h: String!) { signConsent(recordId: $r, consentTextId: $c, textSha256: $h, signatureKey: "test/sig.png") { id textSha256 } }'
    err = await sun.error(sign, {"r": record["id"], "c": old["id"], "h": old["sha256"]})
    assert error_code(err) == "CONSENT_OUTDATED" and err["extensions"]["field"] == "consentTextId"
    assert (
        err["extensions"]["currentVersion"] == new["version"]
        and err["extensions"]["currentConsentTextId"] == new["id"]
    )
    assert await count(demo, ConsentSignature) == 0
    assert await count(demo, Attachment, Attachment.record_id.is_not(None)) == 0
    forged = await sun.error(sign, {"r": record["id"], "c": new["id"], "h": old["sha256"]})
    assert error_code(forged) == "VALIDATION" and forged["extensions"]["field"] == "textSha256"
    signed = (await sun.data(sign, {"r": record["id"], "c": new["id"], "h": new["sha256"]}))[
        "signConsent"
    ]
    assert signed["textSha256"] == new["sha256"]


async def test_therapist_cannot_read_another_departments_patient(
    gql: GraphQLClient, demo: Services
) -> None:
    known = await ids(demo)
    sun = await gql.as_user("pt.sun")
    surgery_patient = str(known["patient:P0002"])
    for query in (
        "query($p: ID!) { treatmentArchive(patientId: $p) { patient { name } } }",
        "query($p: ID!) { treatmentOrders(patientId: $p) { id } }",
    ):
        # "Not yours" answers as "not there", so ids cannot be probed.
        assert error_code(await sun.error(query, {"p": surgery_patient})) == "NOT_FOUND"
        assert error_code(await sun.error(query, {"p": "999999"})) == "NOT_FOUND"
    create = 'mutation($p: ID!) { createTreatmentOrder(input: {patientId: $p, itemCode: "PHYSIO", sessions: 1, paid: true}) { id } }'
    assert error_code(await sun.error(create, {"p": surgery_patient})) == "NOT_FOUND"
    # Their own department's patient: allowed, masked, and logged.
    archive = (
        await sun.data(
            "query($p: ID!) { treatmentArchive(patientId: $p) { patient { idNumber phone } orders { remainingSessions } } }",
            {"p": str(known["patient:P0001"])},
        )
    )["treatmentArchive"]
    assert "*" in archive["patient"]["idNumber"] and archive["orders"][0]["remainingSessions"] == 10
    assert await count(demo, AccessLog, AccessLog.resource == "treatment_archive") == 1
    # A surgeon is not treatment staff at all.
    li = await gql.as_user("dr.li")
    assert error_code(await li.error(create, {"p": surgery_patient})) == "FORBIDDEN"


async def test_recurring_series_lists_the_sessions_it_cannot_place(
    gql: GraphQLClient, demo: Services
) -> None:
    head = await gql.as_user("chief.he")
    first_day = local_today() + timedelta(days=1)
    schedule = (
        await head.data(
            "mutation($i: ScheduleInput!) { createTreatmentSchedule(input: $i) { scheduleId slotsCreated } }",
            {
                "i": {
                    "itemCode": "PHYSIO",
                    "startTime": "07:00",
                    "endTime": "08:00",
                    "slotMinutes": 60,
                    "capacity": 1,
                    "room": "早班理疗室",
                    "weekdays": [0, 1, 2, 3, 4, 5, 6],
                    "workingDaysOnly": False,
                    "validFrom": first_day.isoformat(),
                }
            },
        )
    )["createTreatmentSchedule"]
    assert schedule["slotsCreated"] == 14
    away = first_day + timedelta(days=1)
    await head.data(
        'mutation($d: Date!, $s: ID!) { addScheduleException(day: $d, scheduleId: $s, reason: "设备检修 maintenance") }',
        {"d": away.isoformat(), "s": schedule["scheduleId"]},
    )
    full = first_day + timedelta(days=2)
    async with demo.db.session() as session:
        full_slot = (
            await session.execute(
                sa.select(Slot.id)
                .where(Slot.schedule_id == int(schedule["scheduleId"]))
                .order_by(Slot.starts_at)
                .offset(2)
                .limit(1)
            )
        ).scalar_one()
    sun = await gql.as_user("pt.sun")
    await sun.data(
        BOOK, {"s": str(full_slot), "o": str(await make_order(demo, "P0001", sessions=1))}
    )

    order_id = await make_order(demo, "P0005", sessions=4)
    book_series = "mutation($i: SeriesInput!) { bookAppointmentSeries(input: $i) { seriesId requested appointments { startsAt status } unplaced { date reason } } }"
    series_input = {
        "orderId": str(order_id),
        "start": first_day.isoformat(),
        "at": "07:00",
        "sessions": 6,
        "weekdays": [0, 1, 2, 3, 4, 5, 6],
        "idempotencyKey": "series-1",
    }
    series = (await sun.data(book_series, {"i": series_input}))["bookAppointmentSeries"]
    replay = (await sun.data(book_series, {"i": series_input}))["bookAppointmentSeries"]
    assert replay == series  # a retried request books nothing more
    assert series["requested"] == 6 and len(series["appointments"]) == 4
    placed_days = [
        datetime.fromisoformat(a["startsAt"]).astimezone(demo.settings.tz).date()
        for a in series["appointments"]
    ]
    assert placed_days == [
        first_day,
        first_day + timedelta(days=3),
        first_day + timedelta(days=4),
        first_day + timedelta(days=5),
    ]
    unplaced = {u["date"]: u["reason"] for u in series["unplaced"]}
    assert away.isoformat() in unplaced and full.isoformat() in unplaced
    assert "4" in unplaced[None]  # only 4 sessions left on the order


async def test_no_shows_are_marked_after_the_slot_with_an_injected_clock(
    gql: GraphQLClient, demo: Services
) -> None:
    sun = await gql.as_user("pt.sun")
    order_id = await make_order(demo, "P0005", sessions=1)
    slot_id = await make_slot(demo, starts_in=timedelta(hours=2))
    booked = (await sun.data(BOOK, {"s": str(slot_id), "o": str(order_id)}))["bookAppointment"]
    async with demo.db.session() as session:
        ends = (
            await session.execute(sa.select(Slot.ends_at).where(Slot.id == slot_id))
        ).scalar_one()
    async with demo.db.transaction() as session:
        assert (
            await mark_no_shows(session, now=ends + timedelta(minutes=10)) == []
        )  # within the grace period
    async with demo.db.transaction() as session:
        marked = await mark_no_shows(session, now=ends + timedelta(minutes=31))
    assert [a.id for a in marked] == [int(booked["id"])]
    async with demo.db.transaction() as session:
        assert await mark_no_shows(session, now=ends + timedelta(hours=5)) == []  # nothing twice
    after = (
        await sun.data(
            "query($id: ID!) { appointment(id: $id) { status version } }", {"id": booked["id"]}
        )
    )["appointment"]
    assert after == {"status": "noshow", "version": booked["version"] + 1}
    # The session was not used: the order can be booked again.
    again = await make_slot(demo, starts_in=timedelta(days=1), room="理疗室3")
    assert (await sun.data(BOOK, {"s": str(again), "o": str(order_id)}))["bookAppointment"][
        "status"
    ] == "booked"
    async with demo.db.session() as session:
        used = (
            await session.execute(
                sa.select(TreatmentOrder.used_sessions).where(TreatmentOrder.id == order_id)
            )
        ).scalar_one()
    assert used == 0


async def test_first_treatment_creates_the_archive_in_the_therapists_department(
    gql: GraphQLClient, demo: Services
) -> None:
    sun = await gql.as_user("pt.sun")
    register = "mutation($i: PatientArchiveInput!) { registerTreatmentPatient(input: $i) { id mrn idNumber phone allergies } }"
    created = (
        await sun.data(
            register,
            {
                "i": {
                    "mrn": "P0100",
                    "name": "吴新",
                    "gender": "F",
                    "idNumber": "340207198801011234",
                    "phone": "13800001111",
                    "allergies": ["头孢 cephalosporin"],
                }
            },
        )
    )["registerTreatmentPatient"]
    assert created["idNumber"] == "3402**********1234" and created["phone"] == "138****1111"
    async with demo.db.session() as session:
        patient = (
            await session.execute(sa.select(Patient).where(Patient.mrn == "P0100"))
        ).scalar_one()
        rehab = (
            await session.execute(sa.select(Patient.department_id).where(Patient.mrn == "P0001"))
        ).scalar_one()
    assert (
        patient.department_id == rehab
        and patient.id_number_enc
        and "1234" not in patient.id_number_enc
    )
    order = (
        await sun.data(
            'mutation($p: ID!) { createTreatmentOrder(input: {patientId: $p, itemCode: "DRESS", sessions: 1, paid: true}) { id } }',
            {"p": created["id"]},
        )
    )["createTreatmentOrder"]
    assert order["id"]
    # Another department's patient cannot be overwritten through a record number.
    err = await sun.error(register, {"i": {"mrn": "P0002", "name": "冒名"}})
    assert error_code(err) == "FORBIDDEN"
    bad = await sun.error(register, {"i": {"mrn": "", "name": "无号"}})
    assert error_code(bad) == "VALIDATION" and bad["extensions"]["field"] == "mrn"
