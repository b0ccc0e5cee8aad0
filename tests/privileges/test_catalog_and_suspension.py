"""Surgery catalog, suspensions and revocations through GraphQL over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import error_code

CATALOG = "query($g: Int) { surgeryCatalog(grade: $g) { code name grade level } }"
PRIVILEGES = """query($u: String!) { privileges(surgeonUsername: $u) {
  surgeon { username } maxGradeNow
  grants { id maxGrade status validFrom validUntil grantedAt revokedAt }
  suspensions { id reason endsAt liftedAt }
  history { stream action actor { username } at hash } } }"""
SUSPEND = """mutation($i: SuspendPrivilegeInput!) { suspendPrivilege(input: $i) { id reason startsAt endsAt } }"""
LIFT = 'mutation($id: ID!) { liftSuspension(suspensionId: $id, reason: "进修提前结束") { id liftedAt } }'
REVOKE = "mutation($id: ID!, $r: String!) { revokePrivilege(grantId: $id, reason: $r) { id status revokedAt } }"


async def test_catalog_lists_grades_and_levels(gql):
    li = await gql.as_user("dr.li")
    everything = (await li.data(CATALOG))["surgeryCatalog"]
    assert {p["grade"] for p in everything} == {1, 2, 3, 4}
    assert {p["level"] for p in everything} == {"national", "provincial", "hospital"}
    grade4 = (await li.data(CATALOG, {"g": 4}))["surgeryCatalog"]
    names = {p["name"] for p in grade4}
    assert {"胰十二指肠切除术", "肝叶切除术"} <= names and all(p["grade"] == 4 for p in grade4)
    err = await li.error(CATALOG, {"g": 7})
    assert error_code(err) == "VALIDATION" and err["extensions"]["field"] == "grade"


async def test_demo_privileges_and_visibility(gql):
    ma = await gql.as_user("ma.zhao")
    assert (await ma.data(PRIVILEGES, {"u": "dr.li"}))["privileges"]["maxGradeNow"] == 3
    assert (await ma.data(PRIVILEGES, {"u": "dr.qian"}))["privileges"]["maxGradeNow"] == 4
    # A surgeon sees their own privileges, not a colleague's.
    li = await gql.as_user("dr.li")
    assert (await li.data(PRIVILEGES, {"u": "dr.li"}))["privileges"]["grants"][0][
        "status"
    ] == "active"
    assert error_code(await li.error(PRIVILEGES, {"u": "dr.qian"})) == "FORBIDDEN"
    # The head of another department does not see general surgery's surgeons.
    he = await gql.as_user("chief.he")
    assert error_code(await he.error(PRIVILEGES, {"u": "dr.li"})) == "FORBIDDEN"


async def test_suspend_and_lift_are_recorded(gql):
    ma = await gql.as_user("ma.zhao")
    now = datetime.now(UTC)
    susp = (
        await ma.data(
            SUSPEND,
            {
                "i": {
                    "surgeonUsername": "dr.li",
                    "reason": "外出进修",
                    "startsAt": (now - timedelta(minutes=1)).isoformat(),
                    "endsAt": (now + timedelta(days=90)).isoformat(),
                }
            },
        )
    )["suspendPrivilege"]
    view = (await ma.data(PRIVILEGES, {"u": "dr.li"}))["privileges"]
    assert view["maxGradeNow"] is None
    assert [e["action"] for e in view["history"]][-1] == "suspended"
    await ma.data(LIFT, {"id": susp["id"]})
    view = (await ma.data(PRIVILEGES, {"u": "dr.li"}))["privileges"]
    assert view["maxGradeNow"] == 3
    assert [e["action"] for e in view["history"]][-2:] == ["suspended", "lifted"]
    assert view["history"][-1]["actor"]["username"] == "ma.zhao"
    # Lifting twice is a conflict; a surgeon cannot suspend anyone.
    assert error_code(await ma.error(LIFT, {"id": susp["id"]})) == "CONFLICT"
    li = await gql.as_user("dr.li")
    err = await li.error(
        SUSPEND, {"i": {"surgeonUsername": "dr.qian", "reason": "x", "startsAt": now.isoformat()}}
    )
    assert error_code(err) == "FORBIDDEN"


async def test_bad_suspension_input_writes_nothing(gql):
    ma = await gql.as_user("ma.zhao")
    now = datetime.now(UTC)
    err = await ma.error(
        SUSPEND,
        {
            "i": {
                "surgeonUsername": "dr.li",
                "reason": "下乡",
                "startsAt": now.isoformat(),
                "endsAt": (now - timedelta(days=1)).isoformat(),
            }
        },
    )
    assert error_code(err) == "VALIDATION" and err["extensions"]["field"] == "endsAt"
    err = await ma.error(
        SUSPEND, {"i": {"surgeonUsername": "dr.li", "reason": "", "startsAt": now.isoformat()}}
    )
    assert err["extensions"]["field"] == "reason"
    err = await ma.error(
        SUSPEND, {"i": {"surgeonUsername": "dr.li", "reason": "下乡", "startsAt": "next tuesday"}}
    )
    assert error_code(err) == "VALIDATION"
    assert (await ma.data(PRIVILEGES, {"u": "dr.li"}))["privileges"]["suspensions"] == []


async def test_revoke_only_active_grants(gql):
    ma = await gql.as_user("ma.zhao")
    grant = (await ma.data(PRIVILEGES, {"u": "dr.li"}))["privileges"]["grants"][0]
    revoked = (await ma.data(REVOKE, {"id": grant["id"], "r": "考核不合格"}))["revokePrivilege"]
    assert revoked["status"] == "revoked" and revoked["revokedAt"]
    assert error_code(await ma.error(REVOKE, {"id": grant["id"], "r": "again"})) == "CONFLICT"
    assert (await ma.data(PRIVILEGES, {"u": "dr.li"}))["privileges"]["maxGradeNow"] is None
    chief = await gql.as_user("chief.wang")
    assert error_code(await chief.error(REVOKE, {"id": grant["id"], "r": "x"})) == "FORBIDDEN"
    # By surgeon and grade, as an operator names it.
    by_grade = 'mutation($u: String!, $g: Int) { revokePrivilege(surgeonUsername: $u, grade: $g, reason: "调离临床") { id status } }'
    assert (await ma.data(by_grade, {"u": "dr.qian", "g": 4}))["revokePrivilege"][
        "status"
    ] == "revoked"
    err = await ma.error(by_grade, {"u": "dr.qian", "g": 4})
    assert error_code(err) == "NOT_FOUND" and err["extensions"]["field"] == "grade"
