"""Medical affairs designs a process over GraphQL: a trial run against sample answers
(nothing written), then publishing it, and a colleague starts it the same day."""

from __future__ import annotations

import sqlalchemy as sa

from api.models.approvals import ApprovalDefinition, ApprovalInstance
from api.models.audit import AuditEvent
from api.services import Services
from tests.conftest import GraphQLClient, error_code

OVERTIME = """
key: overtime
version: 1
name: {zh: 加班申请, en: Overtime}
startable: true
deadline: {hours: 24}
critical_when: {field: hours, op: ">", value: 8}
stages:
  - id: dept_head
    name: {zh: 科主任审批, en: Department head}
    assignee: {department_head: applicant}
  - id: vice_president
    name: {zh: 分管副院长审批, en: Vice-president}
    assignee: {role: vice_president}
    mode: any
    when: {field: hours, op: ">", value: 8}
form:
  fields:
    - key: work_date
      label: {zh: 加班日期, en: Date}
      type: date
      required: true
    - key: hours
      label: {zh: 加班时长, en: Hours}
      type: number
      unit: {zh: 小时, en: h}
      min: 0.5
      max: 24
      required: true
"""
TRIAL = """
query($d: String!, $f: JSON!, $a: String) {
  trialProcessDefinition(definition: $d, form: $f, applicantUsername: $a) {
    key version form deadlineHours critical
    steps { id name { zh } mode stage branch assignees { username } } } }
"""
PUBLISH = """
mutation($d: String!) { publishProcessDefinition(definition: $d) { key version startable name } }
"""


async def _count(services: Services, model: type) -> int:
    async with services.db.session() as s:
        return int(await s.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


async def test_a_trial_run_routes_sample_answers_and_writes_nothing(
    gql: GraphQLClient, demo: Services
) -> None:
    zhao = await gql.as_user("ma.zhao")
    before = (await _count(demo, ApprovalDefinition), await _count(demo, AuditEvent))
    short = (
        await zhao.data(
            TRIAL, {"d": OVERTIME, "f": {"work_date": "2026-12-05", "hours": 3}, "a": "dr.li"}
        )
    )["trialProcessDefinition"]
    assert short["key"] == "overtime" and short["version"] == 1
    assert short["form"] == {"work_date": "2026-12-05", "hours": 3}
    assert short["deadlineHours"] == 24 and short["critical"] is False
    assert [(s["id"], [a["username"] for a in s["assignees"]]) for s in short["steps"]] == [
        ("dept_head", ["chief.wang"])
    ]
    long = (
        await zhao.data(
            TRIAL, {"d": OVERTIME, "f": {"work_date": "2026-12-05", "hours": 10}, "a": "dr.li"}
        )
    )["trialProcessDefinition"]
    assert long["critical"] is True
    assert [(s["id"], [a["username"] for a in s["assignees"]]) for s in long["steps"]] == [
        ("dept_head", ["chief.wang"]),
        ("vice_president", ["vp.chen"]),
    ]
    error = await zhao.error(TRIAL, {"d": OVERTIME, "f": {"work_date": "2026-12-05", "hours": 30}})
    assert error_code(error) == "VALIDATION" and error["extensions"]["field"] == "form.hours"
    assert (await _count(demo, ApprovalDefinition), await _count(demo, AuditEvent)) == before


async def test_only_processes_with_a_form_and_never_an_areas_key(
    gql: GraphQLClient, demo: Services
) -> None:
    zhao = await gql.as_user("ma.zhao")
    before = await _count(demo, ApprovalDefinition)
    not_startable = OVERTIME.replace("startable: true\n", "")
    error = await zhao.error(PUBLISH, {"d": not_startable})
    assert error_code(error) == "VALIDATION" and error["extensions"]["field"] == "definition"
    hijack = OVERTIME.replace("key: overtime", "key: surgery").replace("version: 1", "version: 9")
    error = await zhao.error(PUBLISH, {"d": hijack})
    assert error_code(error) == "FORBIDDEN"
    error = await zhao.error(PUBLISH, {"d": "key: [unclosed"})
    assert error_code(error) == "VALIDATION"
    li = await gql.as_user("dr.li")
    assert error_code(await li.error(PUBLISH, {"d": OVERTIME})) == "FORBIDDEN"
    assert await _count(demo, ApprovalDefinition) == before


async def test_published_by_medical_affairs_and_started_by_a_colleague(
    gql: GraphQLClient, demo: Services
) -> None:
    zhao = await gql.as_user("ma.zhao")
    published = (await zhao.data(PUBLISH, {"d": OVERTIME}))["publishProcessDefinition"]
    assert published == {"key": "overtime", "version": 1, "startable": True, "name": "加班申请"}
    again = (await zhao.data(PUBLISH, {"d": OVERTIME}))["publishProcessDefinition"]
    assert again == published  # the same body again changes nothing
    async with demo.db.session() as s:
        events = (
            (
                await s.execute(
                    sa.select(AuditEvent).where(AuditEvent.stream == "process_definition:overtime")
                )
            )
            .scalars()
            .all()
        )
    assert [(e.action, e.data["version"]) for e in events] == [("published", 1)]

    li = await gql.as_user("dr.li")
    keys = {
        d["key"] for d in (await li.data("{ processDefinitions { key } }"))["processDefinitions"]
    }
    assert "overtime" in keys
    started = (
        await li.data(
            'mutation($f: JSON!) { startProcess(definitionKey: "overtime", form: $f) { id kind tasks { assignee { username } } } }',
            {"f": {"work_date": "2026-12-05", "hours": 2}},
        )
    )["startProcess"]
    assert started["kind"] == "overtime"
    assert [t["assignee"]["username"] for t in started["tasks"]] == ["chief.wang"]
    async with demo.db.session() as s:
        row = await s.get(ApprovalInstance, int(started["id"]))
        assert row is not None and row.definition_version == 1
