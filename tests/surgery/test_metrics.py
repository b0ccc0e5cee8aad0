"""approvalMetrics over a known set of applications (submitted and decided at set times)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from api.auth import Actor
from api.domain import approvals, surgery
from api.models.patients import Patient
from api.models.people import User
from api.services import Services
from tests.conftest import GraphQLClient, error_code

T0 = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)
METRICS = """query($s: DateTime!, $u: DateTime!) { approvalMetrics(since: $s, until: $u) {
  submitted decided completedWithin24h completedWithin24hRate emergencySubmitted emergencyWithin2h
  emergencyWithin2hRate medianHoursToDecision overdueCount } }"""


async def _actor(session, username: str) -> Actor:  # type: ignore[no-untyped-def]
    return Actor.from_user(
        (await session.execute(sa.select(User).where(User.username == username))).scalar_one()
    )


async def _submit(services: Services, *, at: datetime, emergency: bool) -> int:
    async with services.db.transaction() as s:
        li = await _actor(s, "dr.li")
        patient = (await s.execute(sa.select(Patient).where(Patient.mrn == "P0002"))).scalar_one()
        request = surgery.SurgeryRequest(
            patient_id=patient.id,
            procedure_code="86.3",
            planned_at=at + timedelta(hours=6),
            emergency=emergency,
            diagnosis="腹壁脂肪瘤",
            anesthesia="局部麻醉",
            preop_assessment="无手术禁忌",
            consent_signed=True,
            surgeon=await s.get(User, li.user_id),
        )
        instance = await surgery.submit_surgery_application(s, request, actor=li, now=at)
        assert instance.id is not None
        return instance.id


async def _decide(services: Services, instance_id: int, decision: str, *, at: datetime) -> None:
    async with services.db.transaction() as s:
        [task] = await approvals.pending_tasks(s, instance_id)
        await approvals.decide_task(
            s, task, actor=await _actor(s, "chief.wang"), decision=decision, comment="意见", now=at
        )


@pytest.fixture
async def known_set(demo: Services) -> Services:
    h = timedelta(hours=1)
    a = await _submit(demo, at=T0, emergency=False)
    await _decide(demo, a, "approve", at=T0 + 3 * h)  # 3 h: within 24 h
    b = await _submit(demo, at=T0 + h, emergency=False)
    await _decide(demo, b, "approve", at=T0 + 31 * h)  # 30 h: late, overdue
    c = await _submit(demo, at=T0 + 2 * h, emergency=True)
    await _decide(demo, c, "approve", at=T0 + 3 * h)  # emergency, 1 h
    d = await _submit(demo, at=T0 + 3 * h, emergency=True)
    await _decide(demo, d, "reject", at=T0 + 6 * h)  # emergency, 3 h: past its 2 h
    await _submit(demo, at=T0 + 4 * h, emergency=False)  # still running, long past due
    f = await _submit(demo, at=T0 + 5 * h, emergency=False)
    async with demo.db.transaction() as s:  # withdrawn: in no figure
        await approvals.withdraw_instance(
            s,
            await approvals.access_instance(s, await _actor(s, "dr.li"), f),
            actor=await _actor(s, "dr.li"),
            now=T0 + 6 * h,
        )
    await _submit(demo, at=T0 + timedelta(days=40), emergency=False)  # outside the period
    return demo


async def test_metrics_on_a_known_set(gql: GraphQLClient, known_set: Services) -> None:
    ma = await gql.as_user("ma.zhao")
    period = {"s": "2025-03-01T00:00:00+08:00", "u": "2025-04-01T00:00:00+08:00"}
    m = (await ma.data(METRICS, period))["approvalMetrics"]
    assert m == {
        "submitted": 5,
        "decided": 4,
        "completedWithin24h": 3,
        "completedWithin24hRate": 0.6,
        "emergencySubmitted": 2,
        "emergencyWithin2h": 1,
        "emergencyWithin2hRate": 0.5,
        "medianHoursToDecision": 3.0,  # of 3, 30, 1, 3
        "overdueCount": 3,
    }
    # Nobody submitted in February: no rates rather than zero.
    empty = (
        await ma.data(METRICS, {"s": "2025-02-01T00:00:00+08:00", "u": "2025-03-01T00:00:00+08:00"})
    )["approvalMetrics"]
    assert (
        empty["submitted"] == 0
        and empty["completedWithin24hRate"] is None
        and empty["medianHoursToDecision"] is None
    )
    assert (await (await gql.as_user("vp.chen")).data(METRICS, period))["approvalMetrics"][
        "submitted"
    ] == 5
    assert error_code(await (await gql.as_user("dr.li")).error(METRICS, period)) == "FORBIDDEN"
    err = await ma.error(METRICS, {"s": period["u"], "u": period["s"]})
    assert error_code(err) == "VALIDATION" and err["extensions"]["field"] == "until"
