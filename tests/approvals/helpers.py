"""Shared helpers for the approval tests: a test-only definition, users, short-cuts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor
from api.domain import approvals
from api.models.approvals import ApprovalInstance, ApprovalTask, TaskStatus
from api.models.people import User

T0 = datetime(2025, 3, 3, 1, 0, tzinfo=UTC)  # a Monday, 09:00 in Shanghai

# Routing like the surgery process, under a test-only key: grade 1-2 → department head;
# grade 3 → head, then medical affairs; grade 4 → head, then medical affairs and the
# vice-president in parallel; emergency → 2 h.
REVIEW_V1: dict[str, Any] = {
    "key": "test_review",
    "version": 1,
    "name": {"zh": "测试审批", "en": "Test review"},
    "deadline": {
        "hours": 24,
        "overrides": [{"when": {"field": "emergency", "op": "==", "value": True}, "hours": 2}],
    },
    "critical_when": {"field": "emergency", "op": "==", "value": True},
    "stages": [
        {
            "id": "head",
            "name": {"zh": "科主任审批", "en": "Head"},
            "assignee": {"department_head": "applicant"},
        },
        {
            "id": "ma",
            "name": {"zh": "医务处审批", "en": "Medical affairs"},
            "assignee": {"role": "medical_affairs"},
            "mode": "any",
            "when": {"field": "grade", "op": "==", "value": 3},
            "deadline_hours": 8,
        },
        {
            "id": "final",
            "when": {"field": "grade", "op": ">=", "value": 4},
            "parallel": [
                {
                    "id": "ma_branch",
                    "steps": [
                        {
                            "id": "ma_sign",
                            "name": {"zh": "医务处会签"},
                            "assignee": {"role": "medical_affairs"},
                        }
                    ],
                },
                {
                    "id": "vp_branch",
                    "steps": [
                        {
                            "id": "vp_sign",
                            "name": {"zh": "副院长会签"},
                            "assignee": {"user": "vp.chen"},
                        }
                    ],
                },
            ],
        },
    ],
}


async def user(session: AsyncSession, username: str) -> User:
    return (await session.execute(sa.select(User).where(User.username == username))).scalar_one()


async def actor(session: AsyncSession, username: str) -> Actor:
    return Actor.from_user(await user(session, username))


async def start(
    session: AsyncSession,
    data: dict[str, Any],
    *,
    applicant: str = "dr.li",
    key: str = "test_review",
    now: datetime = T0,
) -> ApprovalInstance:
    who = await user(session, applicant)
    return await approvals.start_instance(
        session, definition_key=key, applicant=who, data=data, actor=Actor.from_user(who), now=now
    )


async def pending(session: AsyncSession, instance_id: int) -> list[tuple[str, str]]:
    """(step, assignee username) of every pending task."""
    rows = await session.execute(
        sa.select(ApprovalTask.step_id, User.username)
        .join(User, User.id == ApprovalTask.assignee_id)
        .where(ApprovalTask.instance_id == instance_id, ApprovalTask.status == TaskStatus.PENDING)
        .order_by(ApprovalTask.id)
    )
    return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def task_of(session: AsyncSession, instance_id: int, username: str) -> ApprovalTask:
    who = await user(session, username)
    return (
        await session.execute(
            sa.select(ApprovalTask).where(
                ApprovalTask.instance_id == instance_id,
                ApprovalTask.assignee_id == who.id,
                ApprovalTask.status == TaskStatus.PENDING,
            )
        )
    ).scalar_one()


async def decide(
    session: AsyncSession, instance_id: int, username: str, decision: str = "approve", **kw: Any
) -> ApprovalTask:
    task = await task_of(session, instance_id, username)
    return await approvals.decide_task(
        session, task, actor=await actor(session, username), decision=decision, **kw
    )
