"""Races on real PostgreSQL transactions: exactly one outcome, the flow never stalls.

Each race runs a few times; the requests go concurrently through the HTTP app (separate
connections from the pool), so the row lock on the instance is what serializes them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa

from api.domain import approvals
from api.models.approvals import ApprovalInstance, ApprovalTask
from api.models.audit import AuditEvent
from api.models.notices import Notice
from api.services import Services
from tests.approvals.helpers import REVIEW_V1, start, task_of
from tests.conftest import GraphQLClient, error_code

REPEAT = 3
DECIDE = """
mutation($id: ID!, $k: String) { decideTask(taskId: $id, decision: APPROVE, idempotencyKey: $k) { id status } }
"""
WITHDRAW = "mutation($id: ID!) { withdrawApplication(id: $id) { status } }"

COUNTERSIGN: dict[str, Any] = {
    "key": "test_countersign",
    "version": 1,
    "name": {"zh": "会签测试"},
    "stages": [
        {
            "id": "heads",
            "name": {"zh": "全体科主任会签"},
            "assignee": {"role": "dept_head"},
            "mode": "all",
        },
        {
            "id": "ma",
            "name": {"zh": "医务处"},
            "assignee": {"role": "medical_affairs"},
            "mode": "any",
        },
    ],
}


async def _start(services: Services, data: dict[str, Any], key: str = "test_review") -> int:
    async with services.db.transaction() as s:
        await approvals.publish_definition(s, REVIEW_V1)
        await approvals.publish_definition(s, COUNTERSIGN)
        instance = await start(s, data, key=key)
    assert instance.id is not None
    return instance.id


async def _task_id(services: Services, instance_id: int, username: str) -> str:
    async with services.db.session() as s:
        return str((await task_of(s, instance_id, username)).id)


async def _actions(services: Services, instance_id: int) -> list[str]:
    async with services.db.session() as s:
        rows = await s.execute(
            sa.select(AuditEvent.action)
            .where(AuditEvent.stream == f"approval:{instance_id}")
            .order_by(AuditEvent.seq)
        )
        return list(rows.scalars())


async def _instance(services: Services, instance_id: int) -> ApprovalInstance:
    async with services.db.session() as s:
        instance = await s.get(ApprovalInstance, instance_id)
        assert instance is not None
        return instance


def _split(results: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str | None]]:
    ok = [r["data"] for r in results if not r.get("errors")]
    failed = [error_code(r["errors"][0]) for r in results if r.get("errors")]
    return ok, failed


async def test_two_taps_on_one_task_record_one_decision(gql: GraphQLClient, demo: Services) -> None:
    chief = await gql.as_user("chief.wang")
    for _ in range(REPEAT):
        instance_id = await _start(demo, {"grade": 1})
        task_id = await _task_id(demo, instance_id, "chief.wang")
        results = await asyncio.gather(
            chief.execute(DECIDE, {"id": task_id}), chief.execute(DECIDE, {"id": task_id})
        )
        ok, failed = _split(list(results))
        assert len(ok) == 1 and failed == ["ALREADY_DECIDED"], results
        actions = await _actions(demo, instance_id)
        assert actions.count("approved") == 1 and actions.count("completed") == 1
        assert (await _instance(demo, instance_id)).status == "approved"


async def test_two_taps_with_the_same_key_both_get_the_first_result(
    gql: GraphQLClient, demo: Services
) -> None:
    chief = await gql.as_user("chief.wang")
    for n in range(REPEAT):
        instance_id = await _start(demo, {"grade": 3})
        task_id = await _task_id(demo, instance_id, "chief.wang")
        key = f"card-tap-{n}"
        results = await asyncio.gather(
            chief.execute(DECIDE, {"id": task_id, "k": key}),
            chief.execute(DECIDE, {"id": task_id, "k": key}),
        )
        ok, failed = _split(list(results))
        assert failed == [] and [r["decideTask"]["status"] for r in ok] == [
            "approved",
            "approved",
        ], results
        actions = await _actions(demo, instance_id)
        assert actions.count("approved") == 1
        async with demo.db.session() as s:
            ma_tasks = (
                (
                    await s.execute(
                        sa.select(ApprovalTask).where(
                            ApprovalTask.instance_id == instance_id, ApprovalTask.step_id == "ma"
                        )
                    )
                )
                .scalars()
                .all()
            )
        assert len(ma_tasks) == 1  # the flow advanced once
        # Later, the same key again: still the first result; another key: ALREADY_DECIDED.
        assert (await chief.data(DECIDE, {"id": task_id, "k": key}))["decideTask"][
            "status"
        ] == "approved"
        assert (
            error_code(await chief.error(DECIDE, {"id": task_id, "k": key + "-other"}))
            == "ALREADY_DECIDED"
        )


async def test_last_two_countersigners_at_once_advance_once(
    gql: GraphQLClient, demo: Services
) -> None:
    wang, he = await gql.as_user("chief.wang"), await gql.as_user("chief.he")
    for _ in range(REPEAT):
        instance_id = await _start(demo, {}, key="test_countersign")
        tasks = [await _task_id(demo, instance_id, u) for u in ("chief.wang", "chief.he")]
        results = await asyncio.gather(
            wang.execute(DECIDE, {"id": tasks[0]}), he.execute(DECIDE, {"id": tasks[1]})
        )
        ok, failed = _split(list(results))
        assert len(ok) == 2 and failed == [], results
        actions = await _actions(demo, instance_id)
        assert actions.count("step_completed") == 1
        async with demo.db.session() as s:
            ma_tasks = (
                (
                    await s.execute(
                        sa.select(ApprovalTask).where(
                            ApprovalTask.instance_id == instance_id, ApprovalTask.step_id == "ma"
                        )
                    )
                )
                .scalars()
                .all()
            )
        assert [t.status for t in ma_tasks] == ["pending"]


async def test_parallel_branches_finishing_at_once_complete_once(
    gql: GraphQLClient, demo: Services
) -> None:
    chief, ma, vp = (
        await gql.as_user("chief.wang"),
        await gql.as_user("ma.zhao"),
        await gql.as_user("vp.chen"),
    )
    for _ in range(REPEAT):
        instance_id = await _start(demo, {"grade": 4})
        await chief.data(DECIDE, {"id": await _task_id(demo, instance_id, "chief.wang")})
        ma_task, vp_task = (
            await _task_id(demo, instance_id, "ma.zhao"),
            await _task_id(demo, instance_id, "vp.chen"),
        )
        results = await asyncio.gather(
            ma.execute(DECIDE, {"id": ma_task}), vp.execute(DECIDE, {"id": vp_task})
        )
        assert _split(list(results))[1] == []
        assert (await _actions(demo, instance_id)).count("completed") == 1
        assert (await _instance(demo, instance_id)).status == "approved"
        async with demo.db.session() as s:
            approved_notices = await s.scalar(
                sa.select(sa.func.count())
                .select_from(Notice)
                .where(Notice.subject_id == instance_id, Notice.kind == "approval.approved")
            )
        assert approved_notices == 1


async def test_withdraw_racing_approve_has_one_outcome(gql: GraphQLClient, demo: Services) -> None:
    chief, li = await gql.as_user("chief.wang"), await gql.as_user("dr.li")
    outcomes = set()
    for _ in range(REPEAT + 1):
        instance_id = await _start(demo, {"grade": 1})
        task_id = await _task_id(demo, instance_id, "chief.wang")
        results = await asyncio.gather(
            chief.execute(DECIDE, {"id": task_id}), li.execute(WITHDRAW, {"id": str(instance_id)})
        )
        ok, failed = _split(list(results))
        assert len(ok) == 1 and failed == ["INSTANCE_CLOSED"], results
        instance = await _instance(demo, instance_id)
        outcomes.add(instance.status)
        actions = await _actions(demo, instance_id)
        assert actions.count("completed") + actions.count("withdrawn") == 1
        async with demo.db.session() as s:
            pending = await s.scalar(
                sa.select(sa.func.count())
                .select_from(ApprovalTask)
                .where(ApprovalTask.instance_id == instance_id, ApprovalTask.status == "pending")
            )
        assert pending == 0 and instance.closed_at is not None
    assert outcomes <= {"approved", "withdrawn"}
