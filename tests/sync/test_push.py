"""syncPush over GraphQL/HTTP: exactly once, in order, poison skipped, serialized."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa

from api.models.base import utcnow
from api.models.notices import Notice
from api.models.patients import Patient
from api.models.people import User
from tests.sync.client import Pad, SyncError, pad
from tests.sync.conftest import edit


async def notices(services, kind: str) -> list[Notice]:
    async with services.db.session() as session:
        return list((await session.execute(sa.select(Notice).where(Notice.kind == kind))).scalars())


async def test_lost_acknowledgement_and_repush_applies_once(http, demo, patient_ids):
    sun = await pad(http, "pt.sun")
    pid = patient_ids["P0005"]
    sun.mutate("updatePatient", edit(pid, {"allergies": []}, {"allergies": ["青霉素"]}))
    first = await sun.push(lose_ack=True)
    assert first["results"][0]["status"] == "APPLIED"
    assert len(sun.outbox) == 1  # the answer was lost: the device still holds it
    again = await sun.push()
    assert again["results"][0]["replayed"] is True
    assert again["results"][0]["status"] == "APPLIED"
    assert sun.outbox == []
    await sun.pull()
    assert sun.get("patient", pid)["allergies"] == ["青霉素"]
    assert len(await notices(demo, "allergy_recorded")) == 1


async def test_gap_stops_the_batch_and_out_of_order_ids_wait(http, demo, patient_ids):
    sun = await pad(http, "pt.sun")
    pid = patient_ids["P0005"]
    m1 = {
        "id": 1,
        "name": "updatePatient",
        "args": edit(pid, {"allergies": []}, {"allergies": ["花粉"]}),
    }
    m2 = {"id": 2, "name": "updatePatient", "args": edit(pid, {"gender": "M"}, {"gender": "U"})}
    m3 = {"id": 3, "name": "updatePatient", "args": edit(pid, {"gender": "U"}, {"gender": "M"})}
    answer = await sun.push_raw([m2, m1, m3])  # arrives shuffled
    assert [(r["id"], r["status"]) for r in answer["results"]] == [(2, "OUT_OF_ORDER")]
    assert answer["lastMutationId"] == 0
    answer = await sun.push_raw([m1, m3])  # a hole at 2
    assert [(r["id"], r["status"]) for r in answer["results"]] == [
        (1, "APPLIED"),
        (3, "OUT_OF_ORDER"),
    ]
    assert answer["results"][1]["code"] == "OUT_OF_ORDER"
    answer = await sun.push_raw([m1, m2, m3])
    assert [(r["id"], r["status"], r["replayed"]) for r in answer["results"]] == [
        (1, "APPLIED", True),
        (2, "APPLIED", False),
        (3, "APPLIED", False),
    ]
    assert answer["lastMutationId"] == 3


async def test_poison_mutation_mid_batch_is_rejected_and_the_queue_moves_on(
    http, demo, patient_ids
):
    sun = await pad(http, "pt.sun")
    pid = patient_ids["P0005"]
    sun.mutate("updatePatient", edit(pid, {"allergies": []}, {"allergies": ["海鲜"]}))
    sun.mutate("updatePatient", edit(pid, {}, {"gender": "X"}))  # invalid value
    sun.mutate("updatePatient", {"patientId": "not a number"})  # malformed args
    sun.mutate("noSuchMutator", {})
    sun.mutate("updatePatient", edit(999999, {}, {"gender": "F"}))  # no such record
    sun.mutate("updatePatient", edit(pid, {"allergies": ["海鲜"]}, {"allergies": ["海鲜", "芒果"]}))
    answer = await sun.push()
    statuses = [(r["status"], r["code"]) for r in answer["results"]]
    assert statuses == [
        ("APPLIED", None),
        ("REJECTED", "VALIDATION"),
        ("REJECTED", "VALIDATION"),
        ("REJECTED", "VERSION_NOT_SUPPORTED"),
        ("REJECTED", "NOT_FOUND"),
        ("APPLIED", None),
    ]
    assert all(r["reason"] for r in answer["results"] if r["status"] == "REJECTED")
    assert answer["lastMutationId"] == 6 and sun.outbox == []
    await sun.pull()
    assert sun.get("patient", pid)["allergies"] == ["海鲜", "芒果"]
    assert sun.get("patient", pid)["gender"] == "M"


async def test_same_client_pushing_from_two_connections_is_serialized(http, demo, patient_ids):
    sun = await pad(http, "pt.sun")
    pid = patient_ids["P0005"]
    for i in range(30):
        sun.mutate("updatePatient", edit(pid, {"allergies": []}, {"allergies": [f"过敏原{i}"]}))
    worker = sun.twin()  # the service worker holds the same outbox
    page_answer, worker_answer = await asyncio.gather(sun.push(), worker.push())
    assert page_answer["lastMutationId"] == worker_answer["lastMutationId"] == 30
    fresh = [
        r["id"] for r in page_answer["results"] + worker_answer["results"] if not r["replayed"]
    ]
    assert sorted(fresh) == list(range(1, 31))  # each applied exactly once, by one of them
    async with demo.db.session() as session:
        patient = await session.get(Patient, pid)
    assert patient.allergies == [f"过敏原{i}" for i in range(30)]


async def test_device_clock_a_year_off_orders_nothing(http, demo, patient_ids):
    pid = patient_ids["P0005"]
    ahead = await pad(http, "pt.sun")
    behind = await pad(http, "chief.he")
    ahead.mutate(
        "updatePatient",
        edit(pid, {"gender": "M"}, {"gender": "U"}),
        client_time=utcnow() + timedelta(days=365),
    )
    behind.mutate(
        "updatePatient",
        edit(pid, {"gender": "M"}, {"birthDate": "1990-01-31"}),
        client_time=utcnow() - timedelta(days=365),
    )
    await ahead.push()
    await behind.push()
    async with demo.db.session() as session:
        patient = await session.get(Patient, pid)
        assert patient.gender == "U" and patient.birth_date.isoformat() == "1990-01-31"
        # stamps are the server's, whatever the devices believed
        assert abs((patient.updated_at - utcnow()).total_seconds()) < 60


async def test_expired_token_applies_nothing_and_replay_after_login_loses_nothing(
    http, demo, patient_ids
):
    sun = await pad(http, "pt.sun")
    pid = patient_ids["P0005"]
    sun.mutate("updatePatient", edit(pid, {"allergies": []}, {"allergies": ["乳胶"]}))
    async with demo.db.transaction() as session:  # the token dies while the PAD is offline
        user = (
            await session.execute(sa.select(User).where(User.username == "pt.sun"))
        ).scalar_one()
        user.token_version += 1
    try:
        await sun.push()
        raise AssertionError("push with a dead token must fail")
    except SyncError as exc:
        assert exc.code == "UNAUTHENTICATED"
    assert len(sun.outbox) == 1
    await sun.login()
    answer = await sun.push()
    assert answer["results"][0]["status"] == "APPLIED" and sun.outbox == []


async def test_old_client_schema_is_upgraded_or_refused_never_dropped(http, demo, patient_ids):
    pid = patient_ids["P0005"]
    old = await pad(http, "pt.sun", schema_version=1)
    old.mutate("updateAllergies", {"patientId": pid, "allergies": ["头孢"]})
    answer = await old.push()
    assert answer["results"][0]["status"] == "APPLIED"
    ancient = await pad(http, "pt.sun", schema_version=0)
    ancient.mutate("updateAllergies", {"patientId": pid, "allergies": ["阿司匹林"]})
    answer = await ancient.push()
    assert answer["results"][0]["status"] == "REJECTED"
    assert answer["results"][0]["code"] == "VERSION_NOT_SUPPORTED"
    future = await pad(http, "pt.sun", schema_version=99)
    future.mutate("updatePatient", edit(pid, {}, {"gender": "F"}))
    try:
        await future.push()
        raise AssertionError("a newer client than the server must be told to retry")
    except SyncError as exc:
        assert exc.code == "VERSION_NOT_SUPPORTED"
    assert len(future.outbox) == 1
    await old.pull()
    assert old.get("patient", pid)["allergies"] == ["头孢"]


async def test_client_group_of_another_user_is_refused(http, demo, patient_ids):
    sun = await pad(http, "pt.sun")
    other = Pad(http, "chief.he", client_group_id=sun.client_group_id)
    await other.login()
    other.mutate("updatePatient", edit(patient_ids["P0005"], {}, {"gender": "F"}))
    try:
        await other.push()
        raise AssertionError("expected FORBIDDEN")
    except SyncError as exc:
        assert exc.code == "FORBIDDEN"
