"""syncPull: the partial view, the cursor under concurrent commits, revoked access."""

from __future__ import annotations

import sqlalchemy as sa

from api.models.patients import Patient
from api.models.people import Department, User
from tests.sync.client import Pad, pad
from tests.sync.conftest import edit


async def test_first_pull_is_the_department_view_and_next_pull_only_changes(
    http, demo, patient_ids
):
    sun = await pad(http, "pt.sun")
    held = {int(i) for (e, i) in sun.store if e == "patient"}
    assert held == {patient_ids["P0001"], patient_ids["P0005"]}  # rehabilitation only
    assert "id_number" not in sun.get("patient", patient_ids["P0001"])
    assert "*" in sun.get("patient", patient_ids["P0001"])["phone"]  # masked
    again = await sun.pull()
    assert again["reset"] is False and again["puts"] == [] and again["deletes"] == []


async def test_cursor_never_skips_a_change_committed_by_a_concurrent_transaction(
    http, demo, patient_ids
):
    sun = await pad(http, "pt.sun")
    he = await pad(http, "chief.he")
    slow = demo.db.sessionmaker()
    await slow.begin()
    try:
        # A long transaction writes first (its change-log row comes first) ...
        await slow.execute(
            sa.update(Patient).where(Patient.id == patient_ids["P0005"]).values(allergies=["碘"])
        )
        # ... a later one commits before it.
        he.mutate(
            "updatePatient", edit(patient_ids["P0001"], {"allergies": []}, {"allergies": ["酒精"]})
        )
        await he.push()
        seen = await sun.pull()
        assert [p["id"] for p in seen["puts"]] == [str(patient_ids["P0001"])]
        await slow.commit()
    finally:
        await slow.close()
    later = await sun.pull()
    assert [p["id"] for p in later["puts"]] == [str(patient_ids["P0005"])]
    assert sun.get("patient", patient_ids["P0005"])["allergies"] == ["碘"]
    assert (await sun.pull())["puts"] == []  # and nothing twice


async def test_retried_pull_with_an_old_cookie_diffs_against_what_the_device_holds(
    http, demo, patient_ids
):
    sun = await pad(http, "pt.sun")
    old_cookie = sun.cookie
    he = await pad(http, "chief.he")
    he.mutate("updatePatient", edit(patient_ids["P0005"], {"gender": "M"}, {"gender": "U"}))
    await he.push()
    lost = await sun.pull()  # this answer is lost on the way
    assert lost["puts"]
    sun.cookie = old_cookie
    retried = await sun.pull()
    assert [p["id"] for p in retried["puts"]] == [str(patient_ids["P0005"])]
    assert sun.get("patient", patient_ids["P0005"])["gender"] == "U"


async def test_permission_revoked_while_offline(http, demo, patient_ids):
    sun = await pad(http, "pt.sun")
    pid = patient_ids["P0005"]
    for allergy in ("青霉素", "花粉", "海鲜"):
        sun.mutate("updatePatient", edit(pid, {"allergies": []}, {"allergies": [allergy]}))
    async with demo.db.transaction() as session:  # transferred to general surgery meanwhile
        gs = (
            await session.execute(sa.select(Department).where(Department.code == "GS"))
        ).scalar_one()
        user = (
            await session.execute(sa.select(User).where(User.username == "pt.sun"))
        ).scalar_one()
        user.department_id = gs.id
    answer = await sun.push()
    assert [(r["status"], r["code"]) for r in answer["results"]] == [("REJECTED", "FORBIDDEN")] * 3
    assert all(r["reason"] for r in answer["results"])
    assert sun.outbox == [] and answer["lastMutationId"] == 3
    pulled = await sun.pull()
    gone = {(d["entity"], int(d["id"])) for d in pulled["deletes"]}
    assert gone == {("patient", patient_ids["P0001"]), ("patient", pid)}
    assert not sun.has("patient", pid) and not sun.has("patient", patient_ids["P0001"])
    assert sun.has("patient", patient_ids["P0002"])  # now the surgery department's
    async with demo.db.session() as session:
        assert (await session.get(Patient, pid)).allergies == []


async def test_a_cookie_from_another_user_gets_a_reset(http, demo, patient_ids):
    sun = await pad(http, "pt.sun")
    li = Pad(http, "dr.li")
    await li.login()
    li.cookie = sun.cookie
    data = await li.pull()
    assert data["reset"] is True
    assert {int(i) for (_, i) in li.store} == {
        patient_ids["P0002"],
        patient_ids["P0003"],
        patient_ids["P0004"],
    }
