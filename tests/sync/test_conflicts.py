"""Two PADs editing one record: different fields both survive, the same field resolves
the same way in either arrival order, and the loser is kept for the therapist."""

from __future__ import annotations

from tests.sync.client import pad
from tests.sync.conftest import edit


async def test_edits_to_different_fields_both_survive(http, demo, patient_ids):
    pid = patient_ids["P0005"]
    sun = await pad(http, "pt.sun")
    he = await pad(http, "chief.he")
    sun.mutate("updatePatient", edit(pid, {"gender": "M"}, {"gender": "U"}))
    he.mutate(
        "updatePatient",
        edit(
            pid,
            {"birthDate": "1990-01-30", "allergies": []},
            {"birthDate": "1990-02-01", "allergies": ["青霉素"]},
        ),
    )
    sun.mutate("updatePatient", edit(pid, {"allergies": []}, {"allergies": ["花粉"]}))
    await sun.push()
    answer = await he.push()
    assert answer["results"][0]["status"] == "MERGED"  # the allergy list had moved on
    await sun.pull()
    await he.pull()
    for device in (sun, he):
        record = device.get("patient", pid)
        assert (record["gender"], record["birthDate"]) == ("U", "1990-02-01")
        assert sorted(record["allergies"]) == ["花粉", "青霉素"]
    assert await sun.conflicts() == [] and await he.conflicts() == []


async def _race(http, pid: int, first: str, second: str) -> tuple[str, list[dict]]:
    devices = {"pt.sun": await pad(http, "pt.sun"), "chief.he": await pad(http, "chief.he")}
    values = {"pt.sun": "F", "chief.he": "U"}
    for name, device in devices.items():
        device.mutate("updatePatient", edit(pid, {"gender": "M"}, {"gender": values[name]}))
    await devices[first].push()
    answer = await devices[second].push()
    assert answer["results"][0]["status"] == "CONFLICT"
    conflict = answer["results"][0]["conflicts"][0]
    await devices[first].pull()
    return devices[first].get("patient", pid)["gender"], [conflict]


async def test_same_field_resolves_the_same_whatever_the_arrival_order(http, demo, patient_ids):
    gender_a, conflicts_a = await _race(http, patient_ids["P0005"], "pt.sun", "chief.he")
    gender_b, conflicts_b = await _race(http, patient_ids["P0001"], "chief.he", "pt.sun")
    assert gender_a == gender_b == "U"
    assert conflicts_a[0]["losing"] == conflicts_b[0]["losing"] == "F"  # never lost: kept


async def test_the_therapist_sees_and_resolves_the_conflict(http, demo, patient_ids):
    pid = patient_ids["P0005"]
    he = await pad(http, "chief.he")
    sun = await pad(http, "pt.sun")
    he.mutate("updatePatient", edit(pid, {"gender": "M"}, {"gender": "U"}))
    sun.mutate("updatePatient", edit(pid, {"gender": "M"}, {"gender": "F"}))
    await he.push()
    await sun.push()  # sun's F loses to U
    [conflict] = await sun.conflicts()
    assert (
        conflict["field"],
        conflict["losingValue"],
        conflict["winningValue"],
        conflict["clientWon"],
    ) == ("gender", "F", "U", False)
    resolved = await sun.resolve(conflict["id"], "USE_MINE")
    assert resolved["status"] == "resolved"
    await he.pull()
    assert he.get("patient", pid)["gender"] == "F"
    assert await sun.conflicts() == []
