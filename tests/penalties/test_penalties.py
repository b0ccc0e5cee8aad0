"""Scores, appeals, the penalty calculation, issuing with a privilege suspension, rankings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from api.audit import stream_events, verify_chains
from api.auth import Actor
from api.domain import penalties
from api.domain.people import user_by_username
from api.domain.surgery.precheck import DEFAULT_RULES, SurgeryRequest, run_precheck
from api.models.notices import Notice
from api.models.patients import Patient
from tests.conftest import error_code

RECORD = """mutation($i: PenaltyScoreInput!) { recordPenaltyScore(input: $i) { id points status item { code version } doctor { username } departmentName } }"""
CONFIRM = "mutation($id: ID!) { confirmPenaltyScore(id: $id) { id status } }"
APPEAL = "mutation($id: ID!, $r: String!) { appealPenaltyScore(id: $id, reason: $r) { id status appealInstanceId } }"
PENALTIES = "query { penalties { id kind status statusZh totalPoints scoreIds rule { code kind } doctor { username } suspensionId } }"
ISSUE = "mutation($id: ID!) { issuePenalty(id: $id) { id status suspensionId } }"
END = "mutation($id: ID!, $r: String!) { endPenalty(id: $id, reason: $r) { id status endReason } }"
MY_TASKS = "query { myTasks { id status instance { id kind } } }"
DECIDE = 'mutation($t: ID!, $d: Decision!) { decideTask(taskId: $t, decision: $d, comment: "复核") { id status } }'
RANKING = """query($s: DateTime!, $u: DateTime!) { penaltyRanking(since: $s, until: $u) {
  departments { departmentName points count rank doctors { doctor { username } points rank } }
  doctors { doctor { username } points rank } departmentCategories departmentSeries { name data } } }"""


def ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


async def record(client, item: str, days: int, key: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    data = await client.data(
        RECORD,
        {
            "i": {
                "doctorUsername": "dr.li",
                "itemCode": item,
                "occurredAt": ago(days),
                "recorderUnit": "医务处",
                "idempotencyKey": key,
            }
        },
    )
    return data["recordPenaltyScore"]


async def test_scores_become_one_off_and_periodic_penalties(gql, demo) -> None:  # type: ignore[no-untyped-def]
    ma = await gql.as_user("ma.zhao")
    li = await gql.as_user("dr.li")
    # Demo: dr.li already has 2 confirmed points this year. A 6-point score:
    first = await record(ma, "SS-01", 5, key="k-1")
    assert (
        first["status"] == "notified"
        and first["points"] == 6
        and first["departmentName"] == "普外科"
    )
    assert (await record(ma, "SS-01", 5, key="k-1"))["id"] == first["id"]  # replay
    notices = (await li.data("query { myNotices { kind title } }"))["myNotices"]
    assert [n["kind"] for n in notices] == ["penalty.score"]
    # The doctor cannot record or confirm; a bad item names the field.
    assert error_code(await li.error(CONFIRM, {"id": first["id"]})) == "FORBIDDEN"
    bad = await ma.error(
        RECORD, {"i": {"doctorUsername": "dr.li", "itemCode": "NOPE", "occurredAt": ago(1)}}
    )
    assert {k: bad["extensions"][k] for k in ("code", "field")} == {
        "code": "VALIDATION",
        "field": "itemCode",
    }

    assert (await ma.data(CONFIRM, {"id": first["id"]}))["confirmPenaltyScore"][
        "status"
    ] == "confirmed"
    found = (await ma.data(PENALTIES))["penalties"]
    assert [(p["kind"], p["status"], p["scoreIds"]) for p in found] == [
        ("one_off", "pending", [first["id"]])
    ]  # 8 < 12: no periodic yet

    second = await record(ma, "SS-01", 3)
    await ma.data(CONFIRM, {"id": second["id"]})
    found = {(p["kind"], p["rule"]["code"]): p for p in (await ma.data(PENALTIES))["penalties"]}
    periodic = found[("periodic", "YEAR-12")]
    assert (
        periodic["totalPoints"] == 14
        and len(periodic["scoreIds"]) == 4
        and periodic["statusZh"] == "未下发"
    )

    third = await record(ma, "HX-02", 1)
    await ma.data(CONFIRM, {"id": third["id"]})
    periodic = next(p for p in (await ma.data(PENALTIES))["penalties"] if p["kind"] == "periodic")
    assert (
        periodic["totalPoints"] == 15
        and third["id"] in periodic["scoreIds"]
        and len(periodic["scoreIds"]) == 5
    )
    async with demo.db.session() as session:
        events = await stream_events(session, f"penalty:{periodic['id']}")
        assert [e.action for e in events] == ["created", "scores_added"]
        assert await verify_chains(session) == []


async def test_issuing_suspends_privileges_the_surgery_precheck_sees_and_notifies(
    gql, demo
) -> None:  # type: ignore[no-untyped-def]
    ma = await gql.as_user("ma.zhao")
    score = await record(ma, "SS-01", 2)
    await ma.data(CONFIRM, {"id": score["id"]})
    penalty = next(p for p in (await ma.data(PENALTIES))["penalties"] if p["kind"] == "one_off")
    li = await gql.as_user("dr.li")
    assert error_code(await li.error(ISSUE, {"id": penalty["id"]})) == "FORBIDDEN"
    issued = (await ma.data(ISSUE, {"id": penalty["id"]}))["issuePenalty"]
    assert issued["status"] == "issued" and issued["suspensionId"]
    assert (await ma.data(ISSUE, {"id": penalty["id"]}))["issuePenalty"] == issued  # idempotent

    async with demo.db.session() as session:
        doctor = await user_by_username(session, "dr.li")
        patient = (
            await session.execute(sa.select(Patient).where(Patient.mrn == "P0002"))
        ).scalar_one()
        request = SurgeryRequest(
            patient_id=patient.id,
            procedure_code=await _grade1_code(session),
            planned_at=datetime.now(UTC) + timedelta(days=2),
            emergency=False,
            diagnosis="阑尾炎",
            anesthesia="全麻",
            preop_assessment="ok",
            consent_signed=True,
            surgeon=doctor,
        )
        result, _ = await run_precheck(
            session,
            Actor.from_user(doctor),
            request,
            rules=list(DEFAULT_RULES),
            now=datetime.now(UTC),
        )
        assert "PRIVILEGE_SUSPENDED" in [f.code for f in result.findings]
        told = (
            await session.execute(
                sa.select(Notice.recipient_id, Notice.kind).where(Notice.subject_type == "penalty")
            )
        ).all()
        chief = await user_by_username(session, "chief.wang")
        assert sorted(told) == sorted([(doctor.id, "penalty.issued"), (chief.id, "penalty.issued")])

    ended = (await ma.data(END, {"id": penalty["id"], "r": "已执行完毕"}))["endPenalty"]
    assert ended["status"] == "ended"
    assert error_code(await ma.error(ISSUE, {"id": penalty["id"]})) == "CONFLICT"
    async with demo.db.session() as session:
        assert [e.action for e in await stream_events(session, f"penalty:{penalty['id']}")] == [
            "created",
            "issued",
            "ended",
        ]


async def _grade1_code(session) -> str:  # type: ignore[no-untyped-def]
    from api.models.privileges import Procedure

    return (
        await session.execute(sa.select(Procedure.code).where(Procedure.grade == 1).limit(1))
    ).scalar_one()


async def test_an_appeal_is_reviewed_as_an_approval(gql, demo) -> None:  # type: ignore[no-untyped-def]
    ma = await gql.as_user("ma.zhao")
    li = await gql.as_user("dr.li")
    upheld = await record(ma, "CF-01", 3)
    denied = await record(ma, "SS-01", 3)
    assert error_code(await li.error(APPEAL, {"id": upheld["id"], "r": " "})) == "VALIDATION"
    for score in (upheld, denied):
        appealed = (await li.data(APPEAL, {"id": score["id"], "r": "当日为急诊抢救，情况特殊"}))[
            "appealPenaltyScore"
        ]
        assert appealed["status"] == "appealing" and appealed["appealInstanceId"]
    assert error_code(await ma.error(CONFIRM, {"id": upheld["id"]})) == "CONFLICT"
    tasks = {
        t["instance"]["id"]: t["id"]
        for t in (await ma.data(MY_TASKS))["myTasks"]
        if t["instance"]["kind"] == "penalty_appeal"
    }
    ids = {
        s["id"]: (await li.data(APPEAL, {"id": s["id"], "r": "x"}))["appealPenaltyScore"][
            "appealInstanceId"
        ]
        for s in (upheld, denied)
    }
    await ma.data(DECIDE, {"t": tasks[ids[upheld["id"]]], "d": "APPROVE"})
    await ma.data(DECIDE, {"t": tasks[ids[denied["id"]]], "d": "REJECT"})
    scores = {
        s["id"]: s["status"]
        for s in (await ma.data("query { penaltyScores { id status } }"))["penaltyScores"]
    }
    assert scores[upheld["id"]] == "revoked" and scores[denied["id"]] == "confirmed"
    # The rejected appeal confirmed the 6-point score: the calculation ran.
    assert any(
        p["kind"] == "one_off" and p["scoreIds"] == [denied["id"]]
        for p in (await ma.data(PENALTIES))["penalties"]
    )


async def test_a_score_is_judged_by_the_rules_in_force_when_it_happened(demo) -> None:  # type: ignore[no-untyped-def]
    async with demo.db.transaction() as session:
        ma = Actor.from_user(await user_by_username(session, "ma.zhao"))
        doctor = await user_by_username(session, "dr.qian")
        cutover = (datetime.now(demo.settings.tz) - timedelta(days=10)).date()
        await penalties.publish_rule_version(
            session,
            code="ONE-6",
            name="单次记分≥10分",
            kind="one_off",
            threshold=10,
            effective_from=cutover,
            actor=ma,
        )
        await penalties.publish_item_version(
            session,
            code="SS-01",
            name="越级开展手术（新版）",
            points=8,
            effective_from=cutover,
            actor=ma,
        )
        before = await penalties.record_score(
            session,
            doctor=doctor,
            item_code="SS-01",
            occurred_at=datetime.now(UTC) - timedelta(days=20),
            description="",
            recorder_unit="医务处",
            actor=ma,
            settings=demo.settings,
        )
        after = await penalties.record_score(
            session,
            doctor=doctor,
            item_code="SS-01",
            occurred_at=datetime.now(UTC) - timedelta(days=2),
            description="",
            recorder_unit="医务处",
            actor=ma,
            settings=demo.settings,
        )
        assert (before.points, after.points) == (6, 8)  # the item version of the day it happened
        made_before = await penalties.confirm_score(
            session, before, actor=ma, settings=demo.settings
        )
        made_after = await penalties.confirm_score(session, after, actor=ma, settings=demo.settings)
    assert [p.kind for p in made_before] == ["one_off"]  # v1: threshold 6
    # v2 in force: 8 < 10, no one-off; the yearly total 6 + 8 reaches 12.
    assert [(p.kind, p.total_points) for p in made_after] == [("periodic", 14)]


async def test_rankings_by_department_and_doctor(gql, demo) -> None:  # type: ignore[no-untyped-def]
    ma = await gql.as_user("ma.zhao")
    for who, item in (("dr.qian", "SS-01"), ("pt.sun", "GR-01")):
        score = (
            await ma.data(
                RECORD, {"i": {"doctorUsername": who, "itemCode": item, "occurredAt": ago(3)}}
            )
        )["recordPenaltyScore"]
        await ma.data(CONFIRM, {"id": score["id"]})
    since, until = ago(365), ago(-1)
    ranking = (await ma.data(RANKING, {"s": since, "u": until}))["penaltyRanking"]
    assert [d["departmentName"] for d in ranking["departments"]] == ["普外科", "康复医学科"]
    gs = ranking["departments"][0]
    assert [(d["doctor"]["username"], d["points"], d["rank"]) for d in gs["doctors"]] == [
        ("dr.qian", 6, 1),
        ("dr.li", 2, 2),
    ]
    assert ranking["departmentSeries"][0]["data"] == [8, 1]
    # A doctor sees only their own line.
    li = await gql.as_user("dr.li")
    mine = (await li.data(RANKING, {"s": since, "u": until}))["penaltyRanking"]
    assert [d["doctor"]["username"] for d in mine["doctors"]] == ["dr.li"]
