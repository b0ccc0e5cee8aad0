"""Approval tasks and copies reach only staff entitled to them, and a task or an instance
that is not yours answers exactly like one that is not there.

The verdicts are written out by hand from the rule (api/domain/approvals/access.py's
docstring): hand a step on to staff the step's rule names, staff of the application's
department, or the overseers (medical affairs, vice-president, admin); copy to staff of the
application's department or the overseers; copy only as the applicant, an assignee or an
overseer; patients never hold, sign or copy.
"""

from __future__ import annotations

import sqlalchemy as sa

from api.domain import approvals
from api.models.approvals import ApprovalCarbonCopy, ApprovalTask
from api.models.audit import AuditEvent
from api.models.notices import Notice
from api.models.patients import Patient
from api.services import Services
from tests.approvals.helpers import REVIEW_V1, pending, start
from tests.conftest import GraphQLClient, error_code

TRANSFER = "mutation($t: ID!, $u: String!) { transferTask(taskId: $t, toUsername: $u) { id } }"
ADD_SIGNER = "mutation($t: ID!, $u: String!) { addSigner(taskId: $t, username: $u) { id } }"
CC = "mutation($i: ID!, $u: [String!]!) { carbonCopy(instanceId: $i, usernames: $u) { id } }"
DECIDE = "mutation($t: ID!) { decideTask(taskId: $t, decision: APPROVE) { id status } }"
URGE = "mutation($t: ID!) { urgeTask(taskId: $t) { id } }"
INSTANCE = "query($i: ID!) { approvalInstance(id: $i) { id } }"
MY_TASKS = "{ myTasks { id instance { id } } }"
WITHDRAW = "mutation($i: ID!) { withdrawApplication(id: $i) { status } }"
PATIENT = "query($i: ID!) { patient(id: $i) { name } }"


async def _snapshot(services: Services, instance_id: int) -> dict[str, object]:
    """Everything a refused hand-on or copy must leave as it was."""
    async with services.db.session() as s:

        async def count(model: type, *where: sa.ColumnElement[bool]) -> int:
            return (
                await s.scalar(sa.select(sa.func.count()).select_from(model).where(*where))
            ) or 0

        return {
            "tasks": await count(ApprovalTask, ApprovalTask.instance_id == instance_id),
            "copies": await count(
                ApprovalCarbonCopy, ApprovalCarbonCopy.instance_id == instance_id
            ),
            "history": await count(AuditEvent, AuditEvent.stream == f"approval:{instance_id}"),
            "events": await count(AuditEvent),
            "notices": await count(Notice),
            "pending": await pending(s, instance_id),
        }


async def _surgery_like(services: Services) -> tuple[int, int]:
    """A grade-3 review by dr.li (general surgery) about patient P0002; (instance, head task)."""
    async with services.db.transaction() as s:
        await approvals.publish_definition(s, REVIEW_V1)
        p2 = (await s.execute(sa.select(Patient.id).where(Patient.mrn == "P0002"))).scalar_one()
        instance = await start(s, {"grade": 3, "patient_id": p2, "procedure_name": "胆囊切除术"})
        task = (
            await s.execute(sa.select(ApprovalTask).where(ApprovalTask.instance_id == instance.id))
        ).scalar_one()
    assert instance.id is not None and task.id is not None
    return instance.id, task.id


async def test_transfer_and_add_signer_only_to_entitled_staff(
    gql: GraphQLClient, demo: Services
) -> None:
    instance_id, task_id = await _surgery_like(demo)
    chief = await gql.as_user("chief.wang")
    before = await _snapshot(demo, instance_id)
    assert before["pending"] == [("head", "chief.wang")]
    refused = {
        "patient.zhou": "a patient never holds a task",
        "dr.li": "the applicant",
        "chief.he": "head of another department: not this department's step",
        "pt.sun": "another department's therapist",
    }
    for username, why in refused.items():
        for mutation, field in ((TRANSFER, "to"), (ADD_SIGNER, "user")):
            err = await chief.error(mutation, {"t": str(task_id), "u": username})
            assert error_code(err) == "VALIDATION" and err["extensions"]["field"] == field, (
                username,
                why,
                err,
            )
    assert await _snapshot(demo, instance_id) == before

    # A patient cannot take part at all, whatever the task.
    zhou = await gql.as_user("patient.zhou")
    assert error_code(await zhou.error(TRANSFER, {"t": str(task_id), "u": "dr.qian"})) == (
        "FORBIDDEN"
    )
    assert (await zhou.data(MY_TASKS))["myTasks"] == []
    assert error_code(await zhou.error(INSTANCE, {"i": str(instance_id)})) == "NOT_FOUND"
    assert await _snapshot(demo, instance_id) == before

    # Entitled: a colleague of the applicant's department, and an overseer.
    await chief.data(ADD_SIGNER, {"t": str(task_id), "u": "dr.qian"})
    await chief.data(TRANSFER, {"t": str(task_id), "u": "ma.zhao"})
    async with demo.db.session() as s:
        assert sorted(await pending(s, instance_id)) == [("head", "dr.qian"), ("head", "ma.zhao")]


async def test_carbon_copy_only_by_and_to_the_entitled(gql: GraphQLClient, demo: Services) -> None:
    instance_id, task_id = await _surgery_like(demo)
    li = await gql.as_user("dr.li")
    before = await _snapshot(demo, instance_id)
    for username in ("patient.zhou", "pt.sun", "chief.he"):
        err = await li.error(CC, {"i": str(instance_id), "u": [username]})
        assert error_code(err) == "VALIDATION" and err["extensions"]["field"] == "usernames"
    # One bad name in a list refuses the whole copy: nobody is copied.
    err = await li.error(CC, {"i": str(instance_id), "u": ["dr.qian", "patient.zhou"]})
    assert error_code(err) == "VALIDATION"
    assert await _snapshot(demo, instance_id) == before

    # The applicant copies a colleague; the copied colleague may read, not copy onward.
    await li.data(CC, {"i": str(instance_id), "u": ["dr.qian"]})
    qian = await gql.as_user("dr.qian")
    await qian.data(INSTANCE, {"i": str(instance_id)})
    after_copy = await _snapshot(demo, instance_id)
    assert after_copy["copies"] == 1
    assert error_code(await qian.error(CC, {"i": str(instance_id), "u": ["party.liu"]})) == (
        "FORBIDDEN"
    )
    # Someone who cannot see the instance gets the answer of a missing one.
    sun = await gql.as_user("pt.sun")
    assert error_code(await sun.error(CC, {"i": str(instance_id), "u": ["dr.qian"]})) == (
        "NOT_FOUND"
    )
    zhou = await gql.as_user("patient.zhou")
    assert error_code(await zhou.error(CC, {"i": str(instance_id), "u": ["dr.qian"]})) == (
        "NOT_FOUND"
    )
    assert await _snapshot(demo, instance_id) == after_copy

    # An assignee and an overseer may copy (to staff of the department or overseers).
    chief = await gql.as_user("chief.wang")
    await chief.data(CC, {"i": str(instance_id), "u": ["party.liu"]})
    ma = await gql.as_user("ma.zhao")
    await ma.data(CC, {"i": str(instance_id), "u": ["vp.chen"]})
    assert (await _snapshot(demo, instance_id))["copies"] == 3


async def test_a_definition_cannot_route_a_step_to_patients(
    gql: GraphQLClient, demo: Services
) -> None:
    source = (
        "key: to_patients\nversion: 1\nname: {zh: 患者审批}\n"
        "stages:\n  - {id: p, name: {zh: 患者}, assignee: {role: patient}}\n"
    )
    admin = await gql.as_user("admin")
    err = await admin.error(
        "mutation($s: String!) { publishApprovalDefinition(definition: $s) { key } }",
        {"s": source},
    )
    assert error_code(err) == "VALIDATION"
    async with demo.db.session() as s:
        assert (
            await s.scalar(
                sa.text("SELECT count(*) FROM approval_definition WHERE key = 'to_patients'")
            )
        ) == 0


async def test_not_yours_answers_like_not_there(gql: GraphQLClient, demo: Services) -> None:
    instance_id, task_id = await _surgery_like(demo)
    missing = "987654321"
    sun = await gql.as_user("pt.sun")  # staff, but nothing to do with this approval
    before = await _snapshot(demo, instance_id)
    for query, real, ghost in (
        (DECIDE, {"t": str(task_id)}, {"t": missing}),
        (TRANSFER, {"t": str(task_id), "u": "dr.qian"}, {"t": missing, "u": "dr.qian"}),
        (ADD_SIGNER, {"t": str(task_id), "u": "dr.qian"}, {"t": missing, "u": "dr.qian"}),
        (URGE, {"t": str(task_id)}, {"t": missing}),
        (INSTANCE, {"i": str(instance_id)}, {"i": missing}),
        (WITHDRAW, {"i": str(instance_id)}, {"i": missing}),
        (CC, {"i": str(instance_id), "u": ["pt.sun"]}, {"i": missing, "u": ["pt.sun"]}),
    ):
        theirs, nobodys = await sun.error(query, real), await sun.error(query, ghost)
        assert error_code(theirs) == error_code(nobodys) == "NOT_FOUND", (query, theirs)
        assert theirs["message"] == nobodys["message"]
    assert await _snapshot(demo, instance_id) == before

    # Patients: another department's patient answers like no patient at all.
    async with demo.db.session() as s:
        p2 = (await s.execute(sa.select(Patient.id).where(Patient.mrn == "P0002"))).scalar_one()
    theirs = await sun.error(PATIENT, {"i": str(p2)})
    nobodys = await sun.error(PATIENT, {"i": missing})
    assert error_code(theirs) == error_code(nobodys) == "NOT_FOUND"
    assert theirs["message"] == nobodys["message"]
