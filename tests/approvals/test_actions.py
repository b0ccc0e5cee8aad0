"""Transfer, add signer, carbon copy, urge, guards and hooks, closing, escalation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from api.auth import Actor
from api.domain import approvals
from api.errors import DomainError
from api.models.approvals import ApprovalInstance, ApprovalTask
from api.models.notices import Notice
from api.models.people import User
from api.services import Services
from tests.approvals.helpers import REVIEW_V1, T0, decide, pending, start, task_of, user
from tests.conftest import GraphQLClient, error_code

DECIDE = "mutation($id: ID!) { decideTask(taskId: $id, decision: APPROVE) { id status } }"


async def _notices(services: Services, instance_id: int, kind: str | None = None) -> list[Notice]:
    async with services.db.session() as s:
        stmt = sa.select(Notice).where(Notice.subject_id == instance_id).order_by(Notice.id)
        if kind:
            stmt = stmt.where(Notice.kind == kind)
        return list((await s.execute(stmt)).scalars())


@pytest.fixture
def hooks() -> Iterator[list[tuple[str, Any]]]:
    """Guards and hooks a test registers, removed afterwards (the registry is global)."""
    registered: list[tuple[str, Any]] = []
    yield registered
    for kind, fn in registered:
        approvals.unregister(kind, fn)


async def test_transfer_and_add_signer_keep_the_deadline(
    gql: GraphQLClient, demo: Services
) -> None:
    async with demo.db.transaction() as s:
        await approvals.publish_definition(s, REVIEW_V1)
        instance = await start(s, {"grade": 3, "emergency": True}, now=T0)
    assert instance.due_at == T0 + timedelta(hours=2)
    chief = await gql.as_user("chief.wang")
    async with demo.db.session() as s:
        head_task = await task_of(s, instance.id, "chief.wang")
    assert head_task.due_at == instance.due_at
    # To a colleague of the applicant's department (a head of another department is not
    # entitled to this department's step: tests/security/test_approval_targets.py).
    transferred = await chief.data(
        'mutation($id: ID!) { transferTask(taskId: $id, toUsername: "dr.qian", comment: "出差，转钱医生") { id dueAt assignee { username } } }',
        {"id": str(head_task.id)},
    )
    new = transferred["transferTask"]
    assert new["assignee"]["username"] == "dr.qian"
    assert datetime.fromisoformat(new["dueAt"]) == instance.due_at
    he = await gql.as_user("dr.qian")
    added = await he.data(
        'mutation($id: ID!) { addSigner(taskId: $id, username: "party.liu") { id dueAt kind } }',
        {"id": new["id"]},
    )
    assert (
        datetime.fromisoformat(added["addSigner"]["dueAt"]) == instance.due_at
        and added["addSigner"]["kind"] == "added_signer"
    )
    # The transferred-away task is no longer chief.wang's to decide.
    assert error_code(await chief.error(DECIDE, {"id": str(head_task.id)})) == "ALREADY_DECIDED"
    await he.data(DECIDE, {"id": new["id"]})
    async with demo.db.session() as s:
        assert await pending(s, instance.id) == [
            ("head", "party.liu")
        ]  # the added signer must approve too
    liu = await gql.as_user("party.liu")
    await liu.data(DECIDE, {"id": added["addSigner"]["id"]})
    async with demo.db.session() as s:
        assert await pending(s, instance.id) == [("ma", "ma.zhao")]
    assigned = await _notices(demo, instance.id, "approval.task_assigned")
    assert all(n.critical for n in assigned)  # emergency: critical notices
    assert len(assigned) == 4  # chief.wang, dr.qian, party.liu, ma.zhao


async def test_carbon_copy_and_urge_create_notices(gql: GraphQLClient, demo: Services) -> None:
    async with demo.db.transaction() as s:
        await approvals.publish_definition(s, REVIEW_V1)
        instance = await start(s, {"grade": 1})
    li = await gql.as_user("dr.li")
    await li.data(
        'mutation($id: ID!) { carbonCopy(instanceId: $id, usernames: ["dr.qian", "party.liu"]) { id } }',
        {"id": str(instance.id)},
    )
    await li.data(
        'mutation($id: ID!) { carbonCopy(instanceId: $id, usernames: ["dr.qian"]) { id } }',
        {"id": str(instance.id)},
    )
    cc = await _notices(demo, instance.id, "approval.cc")
    assert len(cc) == 2
    async with demo.db.session() as s:
        task = await task_of(s, instance.id, "chief.wang")
    urge = "mutation($id: ID!) { urgeTask(taskId: $id) { id } }"
    await li.data(urge, {"id": str(task.id)})
    assert error_code(await li.error(urge, {"id": str(task.id)})) == "RATE_LIMITED"
    qian = await gql.as_user("dr.qian")  # copied: may read, may not urge
    assert error_code(await qian.error(urge, {"id": str(task.id)})) == "FORBIDDEN"
    urged = await _notices(demo, instance.id, "approval.urged")
    assert len(urged) == 1 and urged[0].recipient_id == task.assignee_id
    # Half an hour later the applicant may urge again.
    async with demo.db.transaction() as s:
        row = await s.get(ApprovalTask, task.id)
        await approvals.urge_task(
            s,
            row,
            actor=Actor.from_user(await user(s, "dr.li")),
            now=row.urged_at + timedelta(minutes=31),
        )
    assert len(await _notices(demo, instance.id, "approval.urged")) == 2


async def test_guard_blocks_mid_flow_and_keeps_signatures(
    gql: GraphQLClient, demo: Services, hooks: list
) -> None:
    suspended: set[int] = set()

    async def privilege_guard(session, instance, now):  # type: ignore[no-untyped-def]
        if instance.applicant_id in suspended:
            return [
                approvals.Finding(
                    "PRIVILEGE_SUSPENDED",
                    "术者手术权限已暂停 / the surgeon's privilege is suspended",
                    "surgeon",
                )
            ]
        return []

    approvals.register_decision_guard("test_review", privilege_guard)
    hooks.append(("test_review", privilege_guard))
    async with demo.db.transaction() as s:
        await approvals.publish_definition(s, REVIEW_V1)
        instance = await start(s, {"grade": 3})
        li = await user(s, "dr.li")
    chief = await gql.as_user("chief.wang")
    async with demo.db.session() as s:
        head_task = await task_of(s, instance.id, "chief.wang")
    suspended.add(li.id)  # suspended (进修) while the application is in flight
    err = await chief.error(DECIDE, {"id": str(head_task.id)})
    assert error_code(err) == "PRIVILEGE_BLOCKED" and "暂停" in err["message"]
    body = await chief.data(
        "query($id: ID!) { approvalInstance(id: $id) { status blockedReason tasks { status } history { action } } }",
        {"id": str(instance.id)},
    )
    got = body["approvalInstance"]
    assert got["status"] == "blocked" and "暂停" in got["blockedReason"]
    assert [t["status"] for t in got["tasks"]] == ["approved"]  # the signature stays
    assert [e["action"] for e in got["history"]][-2:] == ["step_completed", "blocked"]
    ma = await gql.as_user("ma.zhao")
    assert (await ma.data("{ myTasks { id } }"))["myTasks"] == []
    assert [n.kind for n in await _notices(demo, instance.id, "approval.blocked")] == [
        "approval.blocked"
    ]


async def test_completion_and_closing_hooks_run_in_the_transaction(
    demo: Services, hooks: list
) -> None:
    async def write_pdf_path(session, instance, actor, now):  # type: ignore[no-untyped-def]
        instance.pdf_path = f"approvals/{instance.id}.pdf"

    async def note_closing(session, instance, actor, now):  # type: ignore[no-untyped-def]
        instance.blocked_reason = f"closed:{instance.status}"

    approvals.register_completion_hook("test_review", write_pdf_path)
    approvals.register_closing_hook("test_review", note_closing)
    hooks += [("test_review", write_pdf_path), ("test_review", note_closing)]
    async with demo.db.transaction() as s:
        await approvals.publish_definition(s, REVIEW_V1)
        approved = await start(s, {"grade": 1})
        rejected = await start(s, {"grade": 1})
    async with demo.db.transaction() as s:
        await decide(s, approved.id, "chief.wang")
        await decide(s, rejected.id, "chief.wang", "reject", comment="指征不足")
    async with demo.db.session() as s:
        a, r = (
            await s.get(ApprovalInstance, approved.id),
            await s.get(ApprovalInstance, rejected.id),
        )
        assert (a.status, a.pdf_path) == ("approved", f"approvals/{approved.id}.pdf")
        assert (r.status, r.blocked_reason, r.pdf_path) == ("rejected", "closed:rejected", None)


async def test_closing_cancels_pending_tasks_and_unread_reminders(demo: Services) -> None:
    async with demo.db.transaction() as s:
        await approvals.publish_definition(s, REVIEW_V1)
        instance = await start(s, {"grade": 4})
    async with demo.db.transaction() as s:
        await decide(s, instance.id, "chief.wang")
    async with demo.db.transaction() as s:
        task = await task_of(s, instance.id, "vp.chen")
        await approvals.urge_task(s, task, actor=Actor.from_user(await user(s, "dr.li")), now=T0)
        # ma.zhao reads her notice; read notices stay as they are.
        ma_notice = (
            await s.execute(
                sa.select(Notice).where(
                    Notice.idempotency_key.like("task:%:assigned"),
                    Notice.recipient_id == (await user(s, "ma.zhao")).id,
                )
            )
        ).scalar_one()
        ma_notice.read_at = T0
    async with demo.db.transaction() as s:
        await decide(s, instance.id, "ma.zhao", "reject", comment="不同意")
    async with demo.db.session() as s:
        assert await pending(s, instance.id) == []
        tasks = await approvals.instance_tasks(s, instance.id)
        assert [t.status for t in tasks] == ["approved", "rejected", "cancelled"]
    notices = await _notices(demo, instance.id)
    reminders = [
        n
        for n in notices
        if n.kind in ("approval.task_assigned", "approval.urged") and n.read_at is None
    ]
    assert reminders and all(n.cancelled_at is not None for n in reminders)
    assert next(n for n in notices if n.id == ma_notice.id).cancelled_at is None
    outcome = [n for n in notices if n.kind == "approval.rejected"]
    assert len(outcome) == 1 and outcome[0].cancelled_at is None


async def test_a_task_that_leaves_its_assignee_stops_reminding_them(demo: Services) -> None:
    """Approved, handed on, or settled by a 或签 sibling: the task's unread "awaiting your
    decision" and urge notices are cancelled while the instance runs on; the next
    assignee's stand."""
    from tests.approvals.test_routing import ROLES

    async with demo.db.transaction() as s:
        await approvals.publish_definition(s, REVIEW_V1)
        await approvals.publish_definition(s, ROLES)
        review = await start(s, {"grade": 3})
        any_sign = await start(s, {"mode": "any", "extra": True}, key="test_roles")
    async with demo.db.transaction() as s:
        wang_task = await task_of(s, review.id, "chief.wang")
        await approvals.urge_task(
            s, wang_task, actor=Actor.from_user(await user(s, "dr.li")), now=T0
        )
        await approvals.transfer_task(
            s,
            wang_task,
            actor=Actor.from_user(await user(s, "chief.wang")),
            to=await user(s, "dr.qian"),
        )
    async with demo.db.transaction() as s:
        await decide(s, review.id, "dr.qian")
        await decide(s, any_sign.id, "chief.he")

    async with demo.db.session() as s:
        names = {u.id: u.username for u in (await s.execute(sa.select(User))).scalars()}

    def state(notices: list[Notice]) -> dict[tuple[str, str, str], bool]:
        """(kind, recipient, step) -> cancelled and no longer due."""
        return {
            (n.kind, names[n.recipient_id], n.payload["step_id"]): n.cancelled_at is not None
            and n.due_at is None
            for n in notices
            if n.kind in ("approval.task_assigned", "approval.urged")
        }

    assert state(await _notices(demo, review.id)) == {
        ("approval.task_assigned", "chief.wang", "head"): True,  # handed on
        ("approval.urged", "chief.wang", "head"): True,
        ("approval.task_assigned", "dr.qian", "head"): True,  # approved
        ("approval.task_assigned", "ma.zhao", "ma"): False,  # the next step's: still chasing
    }
    assert state(await _notices(demo, any_sign.id)) == {
        ("approval.task_assigned", "chief.he", "heads_any"): True,  # approved
        ("approval.task_assigned", "chief.wang", "heads_any"): True,  # settled by chief.he (或签)
        ("approval.task_assigned", "chief.wang", "own_head"): False,  # chief.wang's next task
    }
    async with demo.db.session() as s:
        assert (await s.get(ApprovalInstance, review.id)).status == "running"
        assert await pending(s, any_sign.id) == [("own_head", "chief.wang")]


async def test_escalate_overdue_notifies_the_superior_once(demo: Services) -> None:
    async with demo.db.transaction() as s:
        await approvals.publish_definition(s, REVIEW_V1)
        instance = await start(s, {"grade": 3}, now=T0)
    async with demo.db.transaction() as s:
        assert await approvals.escalate_overdue(s, now=T0 + timedelta(hours=23)) == 0
    async with demo.db.transaction() as s:
        assert await approvals.escalate_overdue(s, now=T0 + timedelta(hours=25)) == 1
    async with (
        demo.db.transaction() as s
    ):  # a second sweep (another worker, a restart) does nothing new
        assert await approvals.escalate_overdue(s, now=T0 + timedelta(hours=26)) == 0
    escalations = [
        n
        for n in await _notices(demo, instance.id, "approval.overdue")
        if n.idempotency_key.endswith(":escalated")
    ]
    async with demo.db.session() as s:
        ma = await user(s, "ma.zhao")  # chief.wang's superior
        assert [n.recipient_id for n in escalations] == [ma.id]
        task = await task_of(s, instance.id, "chief.wang")
        assert task.overdue and task.escalated_at == T0 + timedelta(hours=25)
        row = await s.get(ApprovalInstance, instance.id)
        assert row.overdue
        actions = [e.action for e in await approvals.instance_history(s, instance.id)]
        assert (
            actions.count("escalated") == 1 and actions.count("overdue") == 2
        )  # the task and the instance
    # The step deadline (8 h for medical affairs) is never later than the instance's.
    async with demo.db.transaction() as s:
        await decide(s, instance.id, "chief.wang", now=T0 + timedelta(hours=20))
    async with demo.db.session() as s:
        assert (await task_of(s, instance.id, "ma.zhao")).due_at == T0 + timedelta(hours=24)


async def test_working_hours_deadline_skips_nights_and_holidays(demo: Services) -> None:
    body = {**REVIEW_V1, "key": "test_working", "deadline": {"hours": 8, "working_hours": True}}
    async with demo.db.transaction() as s:
        await approvals.publish_definition(s, body)
        # Tuesday 2025-09-30 16:30 Shanghai; Oct 1-8 is the National Day holiday.
        before_holiday = datetime.fromisoformat("2025-09-30T16:30:00+08:00")
        instance = await start(s, {"grade": 1}, key="test_working", now=before_holiday)
    # 1 h on Sep 30, then the holiday, then 7 h from Oct 9 08:00 (13:30 after lunch) → 16:30.
    assert instance.due_at == datetime.fromisoformat("2025-10-09T16:30:00+08:00")


async def test_no_approver_is_a_clear_error(demo: Services) -> None:
    body = {
        **REVIEW_V1,
        "key": "test_nobody",
        "stages": [{"id": "x", "name": {"zh": "无人"}, "assignee": {"user": "nobody.here"}}],
    }
    async with demo.db.transaction() as s:
        await approvals.publish_definition(s, body)
    async with demo.db.transaction() as s:
        with pytest.raises(DomainError) as caught:
            await start(s, {}, key="test_nobody")
    assert caught.value.code == "NO_ASSIGNEE"
