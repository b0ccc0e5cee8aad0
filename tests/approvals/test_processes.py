"""发起审批 over GraphQL: the published processes, starting one with its form, and the
started instance running on the same engine as every approval (tasks, decisions,
history, deadlines, escalation, notices)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from api.domain import approvals
from api.models.approvals import ApprovalInstance, ApprovalTask
from api.models.audit import AuditEvent, IdempotencyRecord
from api.models.base import utcnow
from api.models.notices import Notice
from api.services import Services
from tests.conftest import GraphQLClient, error_code
from tests.treatments.helpers import png_bytes

DEFINITIONS = """
query { processDefinitions { key name names { zh en } version startable form { fields { key } } } }
"""
DEFINITION = """
query($k: String!) { processDefinition(key: $k) { key version
  form { fields { key label { zh en } type required requiredIf unit { zh en } min max integer
    options { value label { zh en } } } } } }
"""
START = """
mutation($k: String!, $f: JSON!, $i: String) {
  startProcess(definitionKey: $k, form: $f, idempotencyKey: $i) {
    id kind status dueAt definitionVersion processName { zh en }
    tasks { id assignee { username } status step { id name } }
  }
}
"""
MY_TASKS = """
query { myTasks { id status dueAt step { id name }
  instance { id kind status processName { zh }
    formEntries { key label { zh en } type value text { zh en } } } } }
"""
DECIDE = """
mutation($id: ID!, $c: String) { decideTask(taskId: $id, decision: APPROVE, comment: $c) { id status } }
"""
INSTANCE = """
query($id: ID!) { approvalInstance(id: $id) { id status definitionVersion
  history { action actor { username } hash prevHash data } historyVerified
  form { fields { key } } formEntries { key text { zh } } } }
"""

LEAVE = {
    "leave_type": "personal",
    "starts_at": "2026-12-07T08:00:00+08:00",
    "ends_at": "2026-12-08T17:30:00+08:00",
    "days": 2,
    "reason": "家中有事",
    "deputy": "dr.qian",
}


async def _counts(services: Services) -> tuple[int, int, int, int]:
    async with services.db.session() as s:
        return tuple(  # type: ignore[return-value]
            [
                int(await s.scalar(sa.select(sa.func.count()).select_from(m)) or 0)
                for m in (ApprovalInstance, ApprovalTask, AuditEvent, Notice)
            ]
        )


async def test_published_processes_with_their_forms(gql: GraphQLClient) -> None:
    li = await gql.as_user("dr.li")
    found = {d["key"]: d for d in (await li.data(DEFINITIONS))["processDefinitions"]}
    assert {"leave", "reimbursement", "purchase", "seal", "surgery"} <= set(found)
    leave = found["leave"]
    assert leave["name"] == "请假" and leave["names"] == {"zh": "请假", "en": "Leave"}
    assert leave["version"] == 1 and leave["startable"] is True
    leave = (await li.data(DEFINITION, {"k": "leave"}))["processDefinition"]
    fields = {f["key"]: f for f in leave["form"]["fields"]}
    assert list(fields) == [
        "leave_type",
        "starts_at",
        "ends_at",
        "days",
        "reason",
        "deputy",
        "sick_note",
    ]
    assert fields["days"]["unit"] == {"zh": "天", "en": "days"}
    assert (fields["days"]["min"], fields["days"]["max"]) == (0.5, 180)
    assert fields["sick_note"]["requiredIf"] == {"field": "leave_type", "op": "==", "value": "sick"}
    assert {"value": "sick", "label": {"zh": "病假", "en": "Sick leave"}} in fields["leave_type"][
        "options"
    ]
    # A department field offers the departments, by code.
    seal = (await li.data(DEFINITION, {"k": "reimbursement"}))["processDefinition"]
    department = next(f for f in seal["form"]["fields"] if f["key"] == "department")
    assert {"value": "GS", "label": {"zh": "普外科", "en": "General Surgery"}} in department[
        "options"
    ]
    # Areas with their own submission are listed but not startable here.
    assert found["surgery"]["startable"] is False and found["surgery"]["form"] is None
    only = (await li.data("query { processDefinitions(startableOnly: true) { key } }"))[
        "processDefinitions"
    ]
    assert {d["key"] for d in only} == {"leave", "reimbursement", "purchase", "seal"}


async def test_leave_runs_to_its_end_on_the_engine(gql: GraphQLClient, demo: Services) -> None:
    li = await gql.as_user("dr.li")
    before = utcnow()
    started = (await li.data(START, {"k": "leave", "f": LEAVE}))["startProcess"]
    after = utcnow()
    assert started["kind"] == "leave" and started["status"] == "running"
    assert started["processName"] == {"zh": "请假", "en": "Leave"}
    # 2 days: the department head only (medical affairs joins above 3 days)
    assert [(t["assignee"]["username"], t["step"]["id"]) for t in started["tasks"]] == [
        ("chief.wang", "dept_head")
    ]
    due = datetime.fromisoformat(started["dueAt"])
    assert before + timedelta(hours=48) <= due <= after + timedelta(hours=48)

    wang = await gql.as_user("chief.wang")
    tasks = [
        t for t in (await wang.data(MY_TASKS))["myTasks"] if t["instance"]["id"] == started["id"]
    ]
    assert len(tasks) == 1
    entries = {e["key"]: e for e in tasks[0]["instance"]["formEntries"]}
    assert entries["leave_type"]["label"] == {"zh": "请假类型", "en": "Type of leave"}
    assert entries["leave_type"]["text"] == {"zh": "事假", "en": "Personal leave"}
    assert entries["days"]["text"] == {"zh": "2 天", "en": "2 days"}
    # stored in UTC, shown in Shanghai time
    assert entries["starts_at"]["value"] == "2026-12-07T00:00:00+00:00"
    assert entries["starts_at"]["text"]["zh"] == "2026-12-07 08:00"
    assert entries["deputy"]["text"]["zh"] == "钱医生"
    assert "sick_note" not in entries

    async with demo.db.session() as s:
        assigned = (
            (
                await s.execute(
                    sa.select(Notice).where(
                        Notice.subject_id == int(started["id"]),
                        Notice.kind == "approval.task_assigned",
                    )
                )
            )
            .scalars()
            .all()
        )
    assert len(assigned) == 1 and assigned[0].title.startswith("待您审批（科主任审批）：请假 #")

    assert (await wang.data(DECIDE, {"id": tasks[0]["id"], "c": "同意"}))["decideTask"][
        "status"
    ] == "approved"
    shown = (await li.data(INSTANCE, {"id": started["id"]}))["approvalInstance"]
    assert shown["status"] == "approved"
    assert shown["historyVerified"] is True
    actions = [e["action"] for e in shown["history"]]
    assert actions[0] == "submitted" and actions[-1] == "completed"
    assert "approved" in actions
    assert shown["history"][0]["data"]["definition"] == "leave"
    for earlier, later in zip(shown["history"], shown["history"][1:], strict=False):
        assert later["prevHash"] == earlier["hash"]
    async with demo.db.session() as s:
        approved = await s.scalar(
            sa.select(sa.func.count())
            .select_from(Notice)
            .where(Notice.subject_id == int(started["id"]), Notice.kind == "approval.approved")
        )
    assert approved == 1


async def test_a_long_leave_adds_medical_affairs_and_escalates_when_late(
    gql: GraphQLClient, demo: Services
) -> None:
    li = await gql.as_user("dr.li")
    started = (await li.data(START, {"k": "leave", "f": {**LEAVE, "days": 5}}))["startProcess"]
    wang = await gql.as_user("chief.wang")
    task = next(
        t for t in (await wang.data(MY_TASKS))["myTasks"] if t["instance"]["id"] == started["id"]
    )
    await wang.data(DECIDE, {"id": task["id"]})
    zhao = await gql.as_user("ma.zhao")
    ma_tasks = [
        t for t in (await zhao.data(MY_TASKS))["myTasks"] if t["instance"]["id"] == started["id"]
    ]
    assert [t["step"]["id"] for t in ma_tasks] == ["medical_affairs"]
    # The deadline sweep (the worker's job) past the 48 h: overdue, escalated to the superior.
    async with demo.db.transaction() as s:
        escalated = await approvals.escalate_overdue(s, now=utcnow() + timedelta(hours=49))
    assert escalated >= 1
    shown = (await li.data(INSTANCE, {"id": started["id"]}))["approvalInstance"]
    actions = [e["action"] for e in shown["history"]]
    assert "overdue" in actions and "escalated" in actions
    assert shown["historyVerified"] is True


async def test_refusals_write_nothing(gql: GraphQLClient, demo: Services) -> None:
    li = await gql.as_user("dr.li")
    before = await _counts(demo)

    error = await li.error(START, {"k": "surgery", "f": {"procedure_code": "47.09"}})
    assert error_code(error) == "NOT_STARTABLE"
    assert error["extensions"]["field"] == "definitionKey"
    assert error["extensions"]["messages"]["zh"].startswith("“手术审批”须从其业务页面提交")

    error = await li.error(START, {"k": "no_such_process", "f": {}})
    assert error_code(error) == "NOT_FOUND"

    error = await li.error(START, {"k": "leave", "f": {**LEAVE, "days": 200}})
    assert error_code(error) == "VALIDATION"
    assert error["extensions"]["field"] == "form.days"
    assert error["extensions"]["messages"] == {
        "zh": "请假天数：不能大于 180天",
        "en": "Days: must be at most 180 days",
    }

    error = await li.error(START, {"k": "leave", "f": {**LEAVE, "leave_type": "sick"}})
    assert error["extensions"]["field"] == "form.sick_note"  # required when sick

    without_deputy = {k: v for k, v in LEAVE.items() if k != "deputy"}
    error = await li.error(START, {"k": "leave", "f": without_deputy})
    assert error["extensions"]["field"] == "form.deputy"  # required above one day

    error = await li.error(START, {"k": "leave", "f": {**LEAVE, "deputy": "nobody.here"}})
    assert error["extensions"]["field"] == "form.deputy"
    assert error["extensions"]["messages"]["zh"] == "工作交接人：查无此人"

    uploaded = await li.http.post(
        "/attachments",
        files={"file": ("receipt.png", png_bytes(), "image/png")},
        headers={"Authorization": f"Bearer {li.token}"},
    )
    assert uploaded.status_code == 201, uploaded.text
    receipt = uploaded.json()["sha256"]
    error = await li.error(
        START, {"k": "reimbursement", "f": _reimbursement(dept="NOPE", receipts=[receipt])}
    )
    assert error["extensions"]["field"] == "form.department"

    error = await li.error(START, {"k": "reimbursement", "f": _reimbursement(receipts=["cd" * 32])})
    assert error["extensions"]["field"] == "form.receipts"  # never uploaded

    patient = await gql.as_user("patient.zhou")
    error = await patient.error(START, {"k": "seal", "f": {}})
    assert error_code(error) == "FORBIDDEN"

    assert await _counts(demo) == before
    # the same form with a real department and the uploaded receipt starts
    started = (
        await li.data(START, {"k": "reimbursement", "f": _reimbursement(receipts=[receipt])})
    )["startProcess"]
    shown = (await li.data(INSTANCE, {"id": started["id"]}))["approvalInstance"]
    texts = {e["key"]: e["text"]["zh"] for e in shown["formEntries"]}
    assert texts["department"] == "普外科" and texts["amount"] == "860.5 元"
    assert texts["receipts"] == "1 个附件" and texts["category"] == "差旅费"


def _reimbursement(dept: str = "GS", receipts: list[str] | None = None) -> dict[str, Any]:
    return {
        "category": "travel",
        "amount": 860.5,
        "spent_on": "2026-11-20",
        "department": dept,
        "purpose": "参加学术会议",
        "receipts": receipts or [],
    }


async def test_a_retried_start_returns_the_first_instance(
    gql: GraphQLClient, demo: Services
) -> None:
    li = await gql.as_user("dr.li")
    form = {
        "seal_type": "department",
        "document": "进修证明",
        "copies": 2,
        "used_on": "2026-12-03",
        "purpose": "进修报名",
    }
    first = (await li.data(START, {"k": "seal", "f": form, "i": "seal-1"}))["startProcess"]
    counts = await _counts(demo)
    again = (await li.data(START, {"k": "seal", "f": form, "i": "seal-1"}))["startProcess"]
    assert again["id"] == first["id"]
    assert await _counts(demo) == counts
    async with demo.db.session() as s:
        assert (
            await s.scalar(
                sa.select(sa.func.count())
                .select_from(IdempotencyRecord)
                .where(IdempotencyRecord.scope == "approval.start")
            )
            == 1
        )


NEW_LEAVE = """
key: leave
version: 2
name: {zh: 请假, en: Leave}
startable: true
deadline: {hours: 24}
stages:
  - id: dept_head
    name: {zh: 科主任审批, en: Department head}
    assignee: {department_head: applicant}
form:
  fields:
    - key: days
      label: {zh: 天数, en: Days}
      type: number
      required: true
    - key: destination
      label: {zh: 离院去向, en: Where to}
      type: text
      required: true
"""


async def test_a_running_instance_keeps_the_form_it_started_with(
    gql: GraphQLClient, demo: Services
) -> None:
    li = await gql.as_user("dr.li")
    old = (await li.data(START, {"k": "leave", "f": LEAVE}))["startProcess"]
    admin = await gql.as_user("admin")
    await admin.data(
        "mutation($d: String!) { publishApprovalDefinition(definition: $d) { key version } }",
        {"d": NEW_LEAVE},
    )
    listed = {d["key"]: d for d in (await li.data(DEFINITIONS))["processDefinitions"]}
    assert listed["leave"]["version"] == 2
    assert [f["key"] for f in listed["leave"]["form"]["fields"]] == ["days", "destination"]

    # the old form is refused now; the new one starts on v2
    error = await li.error(START, {"k": "leave", "f": LEAVE})
    assert error["extensions"]["field"] == "form.leave_type"  # not a field of v2
    new = (await li.data(START, {"k": "leave", "f": {"days": 1, "destination": "上海"}}))[
        "startProcess"
    ]
    assert new["definitionVersion"] == 2

    kept = (await li.data(INSTANCE, {"id": old["id"]}))["approvalInstance"]
    assert kept["definitionVersion"] == 1
    assert [f["key"] for f in kept["form"]["fields"]][:2] == ["leave_type", "starts_at"]
    assert {e["key"]: e["text"]["zh"] for e in kept["formEntries"]}["leave_type"] == "事假"
