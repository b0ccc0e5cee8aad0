"""Grants run through their own approval; revoke-and-regrant keeps the history; tampering shows."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from api.models.audit import AuditEvent
from api.services import Services
from tests.conftest import GraphQLClient, error_code
from tests.surgery.helpers import DECIDE, INSTANCE, approve, pending_assignees, pending_for

GRANT = """mutation($i: GrantPrivilegeInput!) { grantPrivilege(input: $i) {
  id kind status tasks { assignee { username } status } } }"""
PRIVILEGES = """query($u: String!) { privileges(surgeonUsername: $u) { maxGradeNow
  grants { id maxGrade procedureCode status grantedAt revokedAt replacesId approvalInstanceId }
  history { stream action actor { username } at } } }"""
HELD = "query($u: String!, $c: String!, $at: DateTime!) { privilegeHeld(surgeonUsername: $u, procedureCode: $c, at: $at) { id maxGrade } }"
REVOKE = 'mutation($id: ID!) { revokePrivilege(grantId: $id, reason: "授权调整：改授二级") { status revokedAt } }'

VALID = {"validFrom": "2025-01-01T00:00:00+08:00", "validUntil": "2030-01-01T00:00:00+08:00"}


async def run_chain(gql: GraphQLClient, instance_id: str) -> None:
    """Department → party branch → medical affairs → committee, asserting the order."""
    ma = await gql.as_user("ma.zhao")
    for username in ("chief.wang", "party.liu", "ma.zhao", "vp.chen"):
        current = (await ma.data(INSTANCE, {"id": instance_id}))["approvalInstance"]
        assert pending_assignees(current) == [username]
        await approve(await gql.as_user(username), instance_id)


async def test_grant_runs_through_its_approval(gql: GraphQLClient, demo: Services) -> None:
    chief = await gql.as_user("chief.wang")  # a department head requests for his surgeon
    inst = (
        await chief.data(
            GRANT,
            {
                "i": {
                    "surgeonUsername": "dr.li",
                    "grade": 4,
                    "reason": "完成四级手术培训及考核",
                    **VALID,
                }
            },
        )
    )["grantPrivilege"]
    assert inst["kind"] == "privilege_grant" and inst["status"] == "running"
    ma = await gql.as_user("ma.zhao")
    view = (await ma.data(PRIVILEGES, {"u": "dr.li"}))["privileges"]
    assert view["maxGradeNow"] == 3  # pending: holds nothing yet
    assert [g["status"] for g in view["grants"]] == ["active", "pending"]
    await run_chain(gql, inst["id"])
    view = (await ma.data(PRIVILEGES, {"u": "dr.li"}))["privileges"]
    assert view["maxGradeNow"] == 4
    new = view["grants"][-1]
    assert new["status"] == "active" and new["approvalInstanceId"] == inst["id"]
    stream = [e for e in view["history"] if e["stream"] == f"privilege:{new['id']}"]
    assert [e["action"] for e in stream] == ["requested", "granted"]
    assert (
        stream[0]["actor"]["username"] == "chief.wang"
        and stream[1]["actor"]["username"] == "vp.chen"
    )


async def test_rejected_grant_and_who_may_request(gql: GraphQLClient, demo: Services) -> None:
    ma = await gql.as_user("ma.zhao")
    inst = (
        await ma.data(
            GRANT,
            {
                "i": {
                    "surgeonUsername": "dr.li",
                    "procedureCode": "52.7",
                    "reason": "单项授权",
                    **VALID,
                }
            },
        )
    )["grantPrivilege"]
    party = await gql.as_user("party.liu")
    await approve(await gql.as_user("chief.wang"), inst["id"])
    [task_id] = await pending_for(party, inst["id"])
    await party.data(DECIDE, {"id": task_id, "d": "REJECT", "c": "材料不全"})
    grants = (await ma.data(PRIVILEGES, {"u": "dr.li"}))["privileges"]["grants"]
    assert grants[-1]["procedureCode"] == "52.7" and grants[-1]["status"] == "rejected"
    # Another department's head, or a surgeon, cannot request; bad terms name the field.
    he = await gql.as_user("chief.he")
    assert (
        error_code(
            await he.error(
                GRANT, {"i": {"surgeonUsername": "dr.li", "grade": 4, "reason": "x", **VALID}}
            )
        )
        == "FORBIDDEN"
    )
    li = await gql.as_user("dr.li")
    assert (
        error_code(
            await li.error(
                GRANT, {"i": {"surgeonUsername": "dr.li", "grade": 4, "reason": "x", **VALID}}
            )
        )
        == "FORBIDDEN"
    )
    err = await ma.error(
        GRANT,
        {
            "i": {
                "surgeonUsername": "dr.li",
                "grade": 4,
                "procedureCode": "52.7",
                "reason": "x",
                **VALID,
            }
        },
    )
    assert error_code(err) == "VALIDATION" and err["extensions"]["field"] == "grade"
    err = await ma.error(
        GRANT, {"i": {"surgeonUsername": "dr.li", "procedureCode": "00.00", "reason": "x", **VALID}}
    )
    assert err["extensions"]["field"] == "procedureCode"
    err = await ma.error(
        GRANT,
        {
            "i": {
                "surgeonUsername": "dr.li",
                "grade": 2,
                "reason": "x",
                "validFrom": VALID["validUntil"],
                "validUntil": VALID["validFrom"],
            }
        },
    )
    assert err["extensions"]["field"] == "validUntil"


async def test_revoke_and_regrant_answers_which_privilege_held_when(
    gql: GraphQLClient, demo: Services
) -> None:
    ma = await gql.as_user("ma.zhao")
    old = (await ma.data(PRIVILEGES, {"u": "dr.li"}))["privileges"]["grants"][0]
    assert old["maxGrade"] == 3
    revoked_at = datetime.fromisoformat(
        (await ma.data(REVOKE, {"id": old["id"]}))["revokePrivilege"]["revokedAt"]
    )
    inst = (
        await ma.data(
            GRANT,
            {
                "i": {
                    "surgeonUsername": "dr.li",
                    "grade": 2,
                    "reason": "改授二级",
                    "replacesGrantId": old["id"],
                    **VALID,
                }
            },
        )
    )["grantPrivilege"]
    await run_chain(gql, inst["id"])
    view = (await ma.data(PRIVILEGES, {"u": "dr.li"}))["privileges"]
    new = view["grants"][-1]
    assert new["replacesId"] == old["id"] and new["maxGrade"] == 2
    granted_at = datetime.fromisoformat(new["grantedAt"])
    assert [g["status"] for g in view["grants"]] == ["revoked", "active"]

    async def held(code: str, at: datetime) -> str | None:
        grant = (await ma.data(HELD, {"u": "dr.li", "c": code, "at": at.isoformat()}))[
            "privilegeHeld"
        ]
        return grant["id"] if grant else None

    last_year = datetime(2025, 6, 1, tzinfo=UTC)
    assert await held("51.23", last_year) == old["id"]  # a grade-3 operation last year: covered
    assert await held("51.23", revoked_at + timedelta(microseconds=1)) is None
    assert await held("47.09", revoked_at + (granted_at - revoked_at) / 2) is None  # the gap
    assert await held("47.09", granted_at) == new["id"]
    assert await held("51.23", granted_at + timedelta(days=1)) is None  # grade 3 no longer
    assert await held("47.09", datetime(2031, 1, 1, tzinfo=UTC)) is None  # past validity
    actions = [(e["stream"], e["action"]) for e in view["history"]]
    assert (f"privilege:{old['id']}", "revoked") in actions and (
        f"privilege:{new['id']}",
        "granted",
    ) in actions


async def _verify(settings_url: str) -> tuple[int, str]:
    env = {**os.environ, "BEDSIDE_DATABASE_URL": settings_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "api.cli",
        "audit",
        "verify",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await proc.communicate()
    return proc.returncode or 0, stderr.decode()


async def test_tampered_privilege_event_fails_audit_verify(
    gql: GraphQLClient, demo: Services
) -> None:
    ma = await gql.as_user("ma.zhao")
    grant = (await ma.data(PRIVILEGES, {"u": "dr.li"}))["privileges"]["grants"][0]
    url = demo.settings.database_url
    assert await _verify(url) == (0, "")
    stream = f"privilege:{grant['id']}"
    async with demo.db.transaction() as s:
        # Someone quietly widens dr.li's recorded grant from grade 3 to grade 4.
        event = (
            await s.execute(
                sa.select(AuditEvent).where(
                    AuditEvent.stream == stream, AuditEvent.action == "granted"
                )
            )
        ).scalar_one()
        await s.execute(
            sa.update(AuditEvent)
            .where(AuditEvent.id == event.id)
            .values(data={**event.data, "max_grade": 4})
        )
    code, stderr = await _verify(url)
    assert code == 1 and stream in stderr and "edited" in stderr and f"event {event.id}" in stderr
