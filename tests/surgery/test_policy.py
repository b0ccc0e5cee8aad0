"""Policy checked at each decision: suspension mid-flow, 越权, the emergency override."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api.domain import approvals
from api.domain.approvals import load_source
from api.domain.approvals.registry import DEFINITIONS_DIR
from api.services import Services
from tests.conftest import GraphQLClient, error_code
from tests.surgery.helpers import (
    DECIDE,
    INSTANCE,
    SUBMIT,
    application,
    approve,
    patient_id,
    pending_assignees,
    pending_for,
)

SUSPEND = "mutation($i: SuspendPrivilegeInput!) { suspendPrivilege(input: $i) { id } }"
REVOKE = 'mutation($id: ID!) { revokePrivilege(grantId: $id, reason: "定期考核不合格") { status } }'
GRANTS = "query($u: String!) { privileges(surgeonUsername: $u) { grants { id status maxGrade } } }"
TRANSFER = 'mutation($t: ID!, $to: String!) { transferTask(taskId: $t, toUsername: $to, comment: "请代审") { id } }'
OVER_AUTHORITY = "query($s: DateTime!, $u: DateTime!) { overAuthorityRecords(since: $s, until: $u) { instanceId code approverUsername grade } }"
APPLICATION = "query($id: ID!) { surgeryApplication(instanceId: $id) { emergencyOverride overrideReason overrideInstanceId overrideConfirmedAt } }"


async def test_suspended_mid_flow_blocks_and_keeps_signatures(
    gql: GraphQLClient, demo: Services
) -> None:
    li = await gql.as_user("dr.li")
    inst = (await li.data(SUBMIT, {"i": application(await patient_id(demo, "P0003"), "51.23")}))[
        "submitSurgeryApplication"
    ]
    await approve(await gql.as_user("chief.wang"), inst["id"])
    ma = await gql.as_user("ma.zhao")
    now = datetime.now(UTC)
    await ma.data(
        SUSPEND,
        {
            "i": {
                "surgeonUsername": "dr.li",
                "reason": "外出进修半年",
                "startsAt": now.isoformat(),
                "endsAt": (now + timedelta(days=180)).isoformat(),
            }
        },
    )
    [task_id] = await pending_for(ma, inst["id"])
    # The decision is recorded; the flow stops on the guard and the decider is told why.
    err = await ma.error(DECIDE, {"id": task_id, "d": "APPROVE"})
    assert error_code(err) == "PRIVILEGE_BLOCKED" and "外出进修半年" in err["message"]
    blocked = (await ma.data(INSTANCE, {"id": inst["id"]}))["approvalInstance"]
    assert blocked["status"] == "blocked" and "外出进修半年" in blocked["blockedReason"]
    approved = sorted(
        t["assignee"]["username"] for t in blocked["tasks"] if t["status"] == "approved"
    )
    assert approved == ["chief.wang", "ma.zhao"]  # the signatures stay on record
    event = next(e for e in blocked["history"] if e["action"] == "blocked")
    assert event["data"]["findings"][0]["code"] == "PRIVILEGE_SUSPENDED"


async def test_revoked_mid_flow_blocks(gql: GraphQLClient, demo: Services) -> None:
    qian = await gql.as_user("dr.qian")
    inst = (
        await qian.data(
            SUBMIT, {"i": application(await patient_id(demo, "P0004"), "50.3", diagnosis="肝癌")}
        )
    )["submitSurgeryApplication"]
    ma = await gql.as_user("ma.zhao")
    grant = (await ma.data(GRANTS, {"u": "dr.qian"}))["privileges"]["grants"][0]
    await ma.data(REVOKE, {"id": grant["id"]})
    chief = await gql.as_user("chief.wang")
    [task_id] = await pending_for(chief, inst["id"])
    assert (
        error_code(await chief.error(DECIDE, {"id": task_id, "d": "APPROVE"}))
        == "PRIVILEGE_BLOCKED"
    )
    blocked = (await ma.data(INSTANCE, {"id": inst["id"]}))["approvalInstance"]
    assert blocked["status"] == "blocked" and pending_assignees(blocked) == []
    # A decision on the closed instance is refused.
    vp = await gql.as_user("vp.chen")
    assert await pending_for(vp, inst["id"]) == []


async def test_approval_beyond_policy_is_recorded_as_over_authority(
    gql: GraphQLClient, demo: Services
) -> None:
    # A later definition version that (wrongly) lets the department head alone approve
    # every grade: the grade-4 approval goes through and is recorded as 越权.
    body = load_source((DEFINITIONS_DIR / "surgery.v1.yaml").read_text(encoding="utf-8"))
    body["version"] = 2
    body["stages"] = body["stages"][:1]
    async with demo.db.transaction() as s:
        await approvals.publish_definition(s, body)
    qian = await gql.as_user("dr.qian")
    inst = (
        await qian.data(
            SUBMIT, {"i": application(await patient_id(demo, "P0004"), "43.99", diagnosis="胃癌")}
        )
    )["submitSurgeryApplication"]
    await approve(await gql.as_user("chief.wang"), inst["id"])
    done = (await (await gql.as_user("ma.zhao")).data(INSTANCE, {"id": inst["id"]}))[
        "approvalInstance"
    ]
    assert done["status"] == "approved"
    over = [e for e in done["history"] if e["action"] == "over_authority"]
    assert len(over) == 1 and over[0]["data"]["code"] == "MISSING_REQUIRED_LEVELS"
    assert over[0]["data"]["missing"] == ["medical_affairs", "vice_president"]
    assert over[0]["actor"]["username"] == "chief.wang" and "越权" in over[0]["data"]["message"]
    # Medical affairs sees it in the hospital-wide 越权 list.
    now = datetime.now(UTC)
    period = {
        "s": (now - timedelta(hours=1)).isoformat(),
        "u": (now + timedelta(hours=1)).isoformat(),
    }
    records = (await (await gql.as_user("ma.zhao")).data(OVER_AUTHORITY, period))[
        "overAuthorityRecords"
    ]
    assert [(r["instanceId"], r["code"], r["approverUsername"], r["grade"]) for r in records] == [
        (inst["id"], "MISSING_REQUIRED_LEVELS", "chief.wang", 4)
    ]
    assert error_code(await qian.error(OVER_AUTHORITY, period)) == "FORBIDDEN"


async def test_approver_not_entitled_is_recorded(gql: GraphQLClient, demo: Services) -> None:
    li = await gql.as_user("dr.li")
    inst = (await li.data(SUBMIT, {"i": application(await patient_id(demo, "P0002"), "47.09")}))[
        "submitSurgeryApplication"
    ]
    chief = await gql.as_user("chief.wang")
    [task_id] = await pending_for(chief, inst["id"])
    await chief.data(TRANSFER, {"t": task_id, "to": "party.liu"})  # no surgery approval authority
    await approve(await gql.as_user("party.liu"), inst["id"])
    done = (await chief.data(INSTANCE, {"id": inst["id"]}))["approvalInstance"]
    codes = [e["data"]["code"] for e in done["history"] if e["action"] == "over_authority"]
    assert codes == ["APPROVER_NOT_ENTITLED", "MISSING_REQUIRED_LEVELS"]


async def test_emergency_override_is_logged_and_confirmed(
    gql: GraphQLClient, demo: Services
) -> None:
    li = await gql.as_user("dr.li")  # grade 3 only
    pid = await patient_id(demo, "P0003")
    soon = (datetime.now(UTC) + timedelta(minutes=30)).isoformat()
    # Without the emergency flag the override is refused; without a reason too.
    err = await li.error(
        SUBMIT,
        {
            "i": application(
                pid, "50.3", plannedAt=soon, emergencyOverride=True, overrideReason="肝破裂大出血"
            )
        },
    )
    assert {f["code"] for f in err["extensions"]["findings"]} == {
        "NO_PRIVILEGE",
        "OVERRIDE_NOT_EMERGENCY",
    }
    err = await li.error(
        SUBMIT,
        {"i": application(pid, "50.3", plannedAt=soon, emergency=True, emergencyOverride=True)},
    )
    assert {f["code"] for f in err["extensions"]["findings"]} == {
        "NO_PRIVILEGE",
        "OVERRIDE_REASON_REQUIRED",
    }

    inst = (
        await li.data(
            SUBMIT,
            {
                "i": application(
                    pid,
                    "50.3",
                    plannedAt=soon,
                    emergency=True,
                    emergencyOverride=True,
                    overrideReason="外伤性肝破裂大出血，上级医师在途",
                )
            },
        )
    )["submitSurgeryApplication"]
    assert inst["status"] == "running"
    view = (await li.data(INSTANCE, {"id": inst["id"]}))["approvalInstance"]
    override = next(e for e in view["history"] if e["action"] == "emergency_override")
    assert (
        override["data"]["reason"].startswith("外伤性肝破裂")
        and override["actor"]["username"] == "dr.li"
    )
    app = (await li.data(APPLICATION, {"id": inst["id"]}))["surgeryApplication"]
    assert app["emergencyOverride"] is True and app["overrideConfirmedAt"] is None

    # The superior (the department head) has a confirmation task besides the approval.
    chief = await gql.as_user("chief.wang")
    confirmation = (await chief.data(INSTANCE, {"id": app["overrideInstanceId"]}))[
        "approvalInstance"
    ]
    assert confirmation["kind"] == "surgery_override" and pending_assignees(confirmation) == [
        "chief.wang"
    ]
    await approve(chief, app["overrideInstanceId"], "情况属实，同意")
    app = (await li.data(APPLICATION, {"id": inst["id"]}))["surgeryApplication"]
    assert app["overrideConfirmedAt"] is not None
    history = [
        e["action"]
        for e in (await li.data(INSTANCE, {"id": inst["id"]}))["approvalInstance"]["history"]
    ]
    assert "override_confirmed" in history

    # The surgery approval itself proceeds: grade 4 → head, then MA and VP.
    await approve(chief, inst["id"])
    await approve(await gql.as_user("vp.chen"), inst["id"])
    await approve(await gql.as_user("ma.zhao"), inst["id"])
    assert (await li.data(INSTANCE, {"id": inst["id"]}))["approvalInstance"]["status"] == "approved"


async def test_suspension_cannot_be_overridden(gql: GraphQLClient, demo: Services) -> None:
    ma = await gql.as_user("ma.zhao")
    now = datetime.now(UTC)
    await ma.data(
        SUSPEND,
        {
            "i": {
                "surgeonUsername": "dr.li",
                "reason": "不良执业记分处罚",
                "startsAt": now.isoformat(),
            }
        },
    )
    li = await gql.as_user("dr.li")
    soon = (now + timedelta(minutes=30)).isoformat()
    err = await li.error(
        SUBMIT,
        {
            "i": application(
                await patient_id(demo, "P0003"),
                "47.09",
                plannedAt=soon,
                emergency=True,
                emergencyOverride=True,
                overrideReason="急诊",
            )
        },
    )
    assert error_code(err) == "PRECHECK_FAILED" and {
        f["code"] for f in err["extensions"]["findings"]
    } == {"PRIVILEGE_SUSPENDED"}
