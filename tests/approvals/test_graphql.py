"""The approval operations over GraphQL/HTTP against PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import sys

import sqlalchemy as sa

from api.domain import approvals
from api.models.approvals import ApprovalInstance, ApprovalTask
from api.models.audit import AccessLog, AuditEvent
from api.models.notices import Notice
from api.services import Services
from tests.approvals.helpers import REVIEW_V1, start
from tests.conftest import GraphQLClient, error_code

MY_TASKS = """
query { myTasks { id status dueAt overdue step { id name } assignee { username displayName }
  instance { id kind status applicant { username } data precheck { passed findings { code message field } } } } }
"""
DECIDE = """
mutation($id: ID!, $d: Decision!, $c: String, $k: String, $r: String) {
  decideTask(taskId: $id, decision: $d, comment: $c, idempotencyKey: $k, returnTo: $r) { id status }
}
"""
INSTANCE = """
query($id: ID!) { approvalInstance(id: $id) { id kind status dueAt blockedReason
  tasks { id assignee { username } status step { id name } }
  history { action actor { username displayName } at hash data } } }
"""


async def _publish_and_start(services: Services, data: dict, applicant: str = "dr.li") -> int:
    async with services.db.transaction() as s:
        await approvals.publish_definition(s, REVIEW_V1)
        instance = await start(s, data, applicant=applicant)
    assert instance.id is not None
    return instance.id


async def _verify_cli(env: dict[str, str]) -> tuple[int, str]:
    """`bedside audit verify` in its own process, as an operator runs it."""
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


async def _count(services: Services, model: type) -> int:
    async with services.db.session() as s:
        return int(await s.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


async def test_my_tasks_decide_and_history(gql: GraphQLClient, demo: Services) -> None:
    instance_id = await _publish_and_start(demo, {"grade": 3, "patient_id": 2})
    chief = await gql.as_user("chief.wang")
    tasks = (await chief.data(MY_TASKS))["myTasks"]
    assert len(tasks) == 1
    task = tasks[0]
    assert task["step"] == {"id": "head", "name": "科主任审批"}
    assert task["assignee"]["username"] == "chief.wang"
    assert task["instance"]["applicant"]["username"] == "dr.li"
    assert task["instance"]["data"] == {"grade": 3, "patient_id": 2}
    assert task["instance"]["precheck"] is None
    async with demo.db.session() as s:
        logged = (
            (
                await s.execute(
                    sa.select(AccessLog)
                    .where(AccessLog.resource == "approval_instance")
                    .order_by(AccessLog.id)
                )
            )
            .scalars()
            .all()
        )
    assert logged and logged[-1].detail["instance_ids"] == [instance_id]

    decided = (await chief.data(DECIDE, {"id": task["id"], "d": "APPROVE", "c": "同意"}))[
        "decideTask"
    ]
    assert decided["status"] == "approved"

    ma = await gql.as_user("ma.zhao")
    body = (await ma.data(INSTANCE, {"id": str(instance_id)}))["approvalInstance"]
    assert body["status"] == "running"
    assert [(t["step"]["id"], t["assignee"]["username"], t["status"]) for t in body["tasks"]] == [
        ("head", "chief.wang", "approved"),
        ("ma", "ma.zhao", "pending"),
    ]
    actions = [e["action"] for e in body["history"]]
    assert actions[:3] == ["submitted", "task_created", "approved"]
    assert body["history"][2]["actor"]["username"] == "chief.wang"
    assert body["history"][2]["data"]["comment"] == "同意"
    assert len({e["hash"] for e in body["history"]}) == len(actions)


async def test_my_applications_withdraw_and_resubmit(gql: GraphQLClient, demo: Services) -> None:
    instance_id = await _publish_and_start(demo, {"grade": 1})
    li = await gql.as_user("dr.li")
    apps = (await li.data("{ myApplications { id status currentSteps { id } } }"))["myApplications"]
    assert apps == [{"id": str(instance_id), "status": "running", "currentSteps": [{"id": "head"}]}]
    chief = await gql.as_user("chief.wang")
    task_id = (await chief.data(MY_TASKS))["myTasks"][0]["id"]
    returned = await chief.data(DECIDE, {"id": task_id, "d": "RETURN", "c": "请补充术前评估"})
    assert returned["decideTask"]["status"] == "returned"
    resubmitted = await li.data(
        'mutation($id: ID!) { resubmitApplication(id: $id, comment: "已补充") { status } }',
        {"id": str(instance_id)},
    )
    assert resubmitted["resubmitApplication"]["status"] == "running"
    withdrawn = await li.data(
        "mutation($id: ID!) { withdrawApplication(id: $id) { status tasks { status } } }",
        {"id": str(instance_id)},
    )
    assert withdrawn["withdrawApplication"]["status"] == "withdrawn"
    assert {t["status"] for t in withdrawn["withdrawApplication"]["tasks"]} == {
        "returned",
        "cancelled",
    }


async def test_bad_input_writes_nothing(gql: GraphQLClient, demo: Services) -> None:
    instance_id = await _publish_and_start(demo, {"grade": 1})
    chief = await gql.as_user("chief.wang")
    task_id = (await chief.data(MY_TASKS))["myTasks"][0]["id"]
    before = (await _count(demo, AuditEvent), await _count(demo, Notice))

    other = await gql.as_user("vp.chen")
    err = await other.error(DECIDE, {"id": task_id, "d": "APPROVE"})
    assert error_code(err) == "NOT_FOUND"  # not yours answers like not there
    err = await chief.error(DECIDE, {"id": task_id, "d": "APPROVE", "c": "长" * 2001})
    assert error_code(err) == "VALIDATION" and err["extensions"]["field"] == "comment"
    err = await chief.error(DECIDE, {"id": "999999", "d": "APPROVE"})
    assert error_code(err) == "NOT_FOUND"
    err = await chief.error(DECIDE, {"id": "abc", "d": "APPROVE"})
    assert error_code(err) == "VALIDATION" and err["extensions"]["field"] == "taskId"
    err = await chief.error(DECIDE, {"id": task_id, "d": "MAYBE"})
    assert error_code(err) == "VALIDATION"
    err = await chief.error(DECIDE, {"id": task_id, "d": "RETURN", "r": "nowhere", "c": "x"})
    assert error_code(err) == "VALIDATION" and err["extensions"]["field"] == "returnTo"
    assert (await _count(demo, AuditEvent), await _count(demo, Notice)) == before
    async with demo.db.session() as s:
        assert (await s.get(ApprovalTask, int(task_id))).status == "pending"

    li = await gql.as_user("dr.li")
    await li.data(
        "mutation($id: ID!) { withdrawApplication(id: $id) { status } }", {"id": str(instance_id)}
    )
    before = (await _count(demo, AuditEvent), await _count(demo, Notice))
    err = await chief.error(DECIDE, {"id": task_id, "d": "APPROVE"})
    assert error_code(err) == "INSTANCE_CLOSED"
    err = await li.error(
        "mutation($id: ID!) { withdrawApplication(id: $id) { status } }", {"id": str(instance_id)}
    )
    assert error_code(err) == "INSTANCE_CLOSED"
    assert (await _count(demo, AuditEvent), await _count(demo, Notice)) == before


async def test_instance_visibility(gql: GraphQLClient, demo: Services) -> None:
    instance_id = await _publish_and_start(demo, {"grade": 1})
    for username, allowed in [
        ("dr.li", True),
        ("chief.wang", True),
        ("ma.zhao", True),
        ("vp.chen", True),
        ("dr.qian", False),
        ("chief.he", False),
    ]:
        client = await gql.as_user(username)
        body = await client.execute(
            "query($id: ID!) { approvalInstance(id: $id) { id } }", {"id": str(instance_id)}
        )
        if allowed:
            assert not body.get("errors"), (username, body)
        else:
            assert error_code(body["errors"][0]) == "NOT_FOUND", username  # like a missing id
    li = await gql.as_user("dr.li")
    await li.data(
        'mutation($id: ID!) { carbonCopy(instanceId: $id, usernames: ["dr.qian"]) { id } }',
        {"id": str(instance_id)},
    )
    qian = await gql.as_user("dr.qian")
    await qian.data(
        "query($id: ID!) { approvalInstance(id: $id) { id } }", {"id": str(instance_id)}
    )


async def test_publish_definition_mutation(gql: GraphQLClient, demo: Services) -> None:
    source = "key: gql_flow\nversion: 1\nname: {zh: 图形接口流程}\nstages:\n  - {id: head, name: {zh: 主任}, assignee: {department_head: applicant}}\n"
    mutation = (
        "mutation($s: String!) { publishApprovalDefinition(definition: $s) { key version name } }"
    )
    li = await gql.as_user("dr.li")
    assert error_code(await li.error(mutation, {"s": source})) == "FORBIDDEN"
    admin = await gql.as_user("admin")
    assert (await admin.data(mutation, {"s": source}))["publishApprovalDefinition"] == {
        "key": "gql_flow",
        "version": 1,
        "name": "图形接口流程",
    }
    assert (await admin.data(mutation, {"s": source}))["publishApprovalDefinition"][
        "version"
    ] == 1  # idempotent
    err = await admin.error(mutation, {"s": source.replace("主任", "科主任")})
    assert error_code(err) == "CONFLICT"
    err = await admin.error(
        mutation,
        {
            "s": "key: x\nversion: 1\nname: {zh: x}\nstages: [{id: a, name: {zh: a}, assignee: {role: nobody}}]"
        },
    )
    assert (
        error_code(err) == "VALIDATION"
        and err["extensions"]["field"] == "definition"
        and "role" in err["message"]
    )
    err = await admin.error(mutation, {"s": "key: [unclosed"})
    assert error_code(err) == "VALIDATION"


async def test_audit_verify_catches_tampered_approval_event(
    gql: GraphQLClient, demo: Services
) -> None:
    instance_id = await _publish_and_start(demo, {"grade": 1})
    chief = await gql.as_user("chief.wang")
    task_id = (await chief.data(MY_TASKS))["myTasks"][0]["id"]
    await chief.data(DECIDE, {"id": task_id, "d": "APPROVE"})
    env = {**os.environ, "BEDSIDE_DATABASE_URL": demo.settings.database_url}
    code, stderr = await _verify_cli(env)
    assert code == 0, stderr
    async with demo.db.transaction() as s:
        await s.execute(
            sa.text(
                "UPDATE audit_event SET data = jsonb_set(data, '{comment}', '\"驳回\"') WHERE stream = :s AND action = 'approved'"
            ),
            {"s": f"approval:{instance_id}"},
        )
    code, stderr = await _verify_cli(env)
    assert code == 1 and f"approval:{instance_id}" in stderr and "edited" in stderr
    # A whole deleted history is found too.
    async with demo.db.transaction() as s:
        await s.execute(
            sa.text("DELETE FROM audit_event WHERE stream = :s"), {"s": f"approval:{instance_id}"}
        )
        await s.execute(
            sa.text("DELETE FROM audit_stream WHERE stream = :s"), {"s": f"approval:{instance_id}"}
        )
        assert await s.get(ApprovalInstance, instance_id) is not None
    code, stderr = await _verify_cli(env)
    assert code == 1 and f"approval:{instance_id}" in stderr and "history missing" in stderr
