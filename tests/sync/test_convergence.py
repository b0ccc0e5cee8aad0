"""Property: any interleaving of pushes (whole, partial, acknowledgement lost) and pulls
from N offline PADs converges to one server state, the same whatever the order, and
every PAD's view equals it after a final pull."""

from __future__ import annotations

import json
import uuid
from datetime import date

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.auth import SYSTEM_ACTOR
from api.domain.patients import PatientData, upsert_patient
from api.models.sync import SyncMutation
from tests.sync.client import pad
from tests.sync.conftest import edit

USERS = ("pt.sun", "chief.he", "pt.sun")  # two PADs of one therapist, one of another
GENDERS = ("M", "F", "U", "O")
DATES = ("1980-05-01", "1975-12-31", "1990-01-30")
ALLERGENS = ("青霉素", "花粉", "海鲜", "乳胶")
INITIAL = {"gender": "M", "birthDate": "1990-01-30", "allergies": []}

change = st.one_of(
    st.builds(lambda v: {"gender": v}, st.sampled_from(GENDERS)),
    st.builds(lambda v: {"birthDate": v}, st.sampled_from(DATES)),
    st.builds(lambda v: {"allergies": [v]}, st.sampled_from(ALLERGENS)),
)
queues = st.lists(
    st.lists(change, min_size=1, max_size=4), min_size=len(USERS), max_size=len(USERS)
)
steps = st.lists(
    st.tuples(
        st.integers(0, len(USERS) - 1), st.sampled_from(["push", "push_one", "lost_ack", "pull"])
    ),
    max_size=10,
)


def expected_state(all_changes: list[dict]) -> dict:
    """The order-independent answer: greater canonical value per scalar, union of sets."""
    state = dict(INITIAL, allergies=[])
    for field in ("gender", "birthDate"):
        values = [c[field] for c in all_changes if field in c and c[field] != INITIAL[field]]
        if values:
            state[field] = max(values, key=lambda v: json.dumps(v, ensure_ascii=False))
    state["allergies"] = sorted({a for c in all_changes for a in c.get("allergies", [])})
    return state


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(queued=queues, interleaving=steps)
async def test_any_interleaving_converges(http, demo, queued, interleaving):
    mrn = "H" + uuid.uuid4().hex[:8]
    async with demo.db.transaction() as session:
        patient, _ = await upsert_patient(
            session,
            demo.cipher,
            PatientData(
                mrn=mrn,
                name="性质测试",
                gender="M",
                birth_date=date(1990, 1, 30),
                department_code="REHAB",
            ),
            actor=SYSTEM_ACTOR,
        )
        pid = patient.id
    devices = [await pad(http, user) for user in USERS]
    for device, changes in zip(devices, queued, strict=True):
        for c in changes:
            device.mutate("updatePatient", edit(pid, {k: INITIAL[k] for k in c}, c))
    for index, action in interleaving:
        device = devices[index]
        if action == "push":
            await device.push()
        elif action == "push_one":
            await device.push(limit=1)
        elif action == "lost_ack":
            await device.push(lose_ack=True)
        else:
            await device.pull()
    for device in devices:
        await device.push()
        assert device.outbox == []
    for device in devices:
        await device.pull()

    want = expected_state([c for changes in queued for c in changes])
    for device in devices:
        mine = device.get("patient", pid)
        got = {
            "gender": mine["gender"],
            "birthDate": mine["birthDate"],
            "allergies": sorted(mine["allergies"]),
        }
        assert got == want
    async with demo.db.session() as session:
        applied = (
            await session.execute(
                sa.select(sa.func.count())
                .select_from(SyncMutation)
                .where(SyncMutation.client_id.in_([d.client_id for d in devices]))
            )
        ).scalar_one()
    assert applied == sum(len(q) for q in queued)  # each exactly once
