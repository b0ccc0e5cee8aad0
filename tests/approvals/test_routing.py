"""Routing through the service layer: sequential steps, 会签, 或签, conditions, versions."""

from __future__ import annotations

import pytest

from api.domain import approvals
from api.errors import DomainError
from api.models.approvals import ApprovalInstance
from api.services import Services
from tests.approvals.helpers import REVIEW_V1, decide, pending, start


async def test_grades_route_by_data(demo: Services) -> None:
    async with demo.db.transaction() as s:
        await approvals.publish_definition(s, REVIEW_V1)
        g2 = await start(s, {"grade": 2})
        g3 = await start(s, {"grade": 3})
        g4 = await start(s, {"grade": 4})
    async with demo.db.transaction() as s:
        assert await pending(s, g2.id) == [("head", "chief.wang")]
        await decide(s, g2.id, "chief.wang")
        await decide(s, g3.id, "chief.wang")
        await decide(s, g4.id, "chief.wang")
    async with demo.db.transaction() as s:
        assert (await s.get(ApprovalInstance, g2.id)).status == "approved"
        assert await pending(s, g3.id) == [("ma", "ma.zhao")]
        assert await pending(s, g4.id) == [("ma_sign", "ma.zhao"), ("vp_sign", "vp.chen")]
        await decide(s, g4.id, "vp.chen")
    async with demo.db.transaction() as s:
        assert (await s.get(ApprovalInstance, g4.id)).status == "running"
        await decide(s, g4.id, "ma.zhao")
    async with demo.db.transaction() as s:
        assert (await s.get(ApprovalInstance, g4.id)).status == "approved"


ROLES: dict = {
    "key": "test_roles",
    "version": 1,
    "name": {"zh": "会签或签"},
    "stages": [
        {
            "id": "heads_any",
            "name": {"zh": "任一科主任"},
            "assignee": {"role": "dept_head"},
            "mode": "any",
            "when": {"field": "mode", "op": "==", "value": "any"},
        },
        {
            "id": "heads_all",
            "name": {"zh": "全体科主任"},
            "assignee": {"role": "dept_head"},
            "mode": "all",
            "when": {
                "any": [
                    {"field": "mode", "op": "==", "value": "all"},
                    {"field": "mode", "op": "not_in", "value": ["any"]},
                ]
            },
        },
        {
            "id": "own_head",
            "name": {"zh": "本科室主任"},
            "assignee": {"role": "dept_head", "scope": "applicant_department"},
            "when": {
                "all": [
                    {"field": "extra", "op": "exists"},
                    {"not": {"field": "extra", "op": "==", "value": False}},
                ]
            },
        },
    ],
}


async def test_countersign_needs_everyone(demo: Services) -> None:
    async with demo.db.transaction() as s:
        await approvals.publish_definition(s, ROLES)
        instance = await start(s, {"mode": "all"}, key="test_roles")
    async with demo.db.transaction() as s:
        assert await pending(s, instance.id) == [
            ("heads_all", "chief.wang"),
            ("heads_all", "chief.he"),
        ]
        await decide(s, instance.id, "chief.wang")
    async with demo.db.transaction() as s:
        assert (await s.get(ApprovalInstance, instance.id)).status == "running"
        assert await pending(s, instance.id) == [("heads_all", "chief.he")]
        await decide(s, instance.id, "chief.he")
    async with demo.db.session() as s:
        assert (await s.get(ApprovalInstance, instance.id)).status == "approved"


async def test_any_sign_first_approval_cancels_the_others(demo: Services) -> None:
    async with demo.db.transaction() as s:
        await approvals.publish_definition(s, ROLES)
        instance = await start(s, {"mode": "any", "extra": True}, key="test_roles")
    async with demo.db.transaction() as s:
        await decide(s, instance.id, "chief.he")
    async with demo.db.session() as s:
        statuses = {
            t.step_id + ":" + str(t.assignee_id): t.status
            for t in await approvals.instance_tasks(s, instance.id)
        }
        assert sorted(statuses.values()) == ["approved", "cancelled", "pending"]
        # The scoped role rule picks the head of the applicant's department only.
        assert await pending(s, instance.id) == [("own_head", "chief.wang")]


async def test_publishing_v2_leaves_running_instances_on_v1(demo: Services) -> None:
    async with demo.db.transaction() as s:
        await approvals.publish_definition(s, REVIEW_V1)
        on_v1 = await start(s, {"grade": 2})
        # v2: grade 2 now also needs medical affairs.
        v2 = {
            **REVIEW_V1,
            "version": 2,
            "stages": [
                REVIEW_V1["stages"][0],
                {**REVIEW_V1["stages"][1], "when": {"field": "grade", "op": ">=", "value": 2}},
                REVIEW_V1["stages"][2],
            ],
        }
        await approvals.publish_definition(s, v2)
        on_v2 = await start(s, {"grade": 2})
        assert (on_v1.definition_version, on_v2.definition_version) == (1, 2)
    async with demo.db.transaction() as s:
        await decide(s, on_v1.id, "chief.wang")
        await decide(s, on_v2.id, "chief.wang")
    async with demo.db.session() as s:
        assert (await s.get(ApprovalInstance, on_v1.id)).status == "approved"
        assert await pending(s, on_v2.id) == [("ma", "ma.zhao")]


async def test_repository_definitions_publish_idempotently(demo: Services) -> None:
    async with demo.db.transaction() as s:
        first = await approvals.publish_definitions(s)
        again = await approvals.publish_definitions(s)
    assert [r.id for r in first] == [r.id for r in again] and first
    async with demo.db.transaction() as s:
        instance = await start(s, {"urgent": True}, key="general")
        assert await pending(s, instance.id) == [("dept_head", "chief.wang")]
        assert (
            instance.due_at is not None
            and (instance.due_at - instance.created_at).total_seconds() == 8 * 3600
        )


async def test_invalid_definitions_name_the_problem(demo: Services) -> None:
    bad_bodies = [
        ({**REVIEW_V1, "stages": []}, "stages"),
        ({**REVIEW_V1, "stages": [REVIEW_V1["stages"][0], REVIEW_V1["stages"][0]]}, "used twice"),
        (
            {
                **REVIEW_V1,
                "stages": [
                    {
                        "id": "x",
                        "name": {"zh": "x"},
                        "assignee": {"role": "dept_head", "user": "dr.li"},
                    }
                ],
            },
            "exactly one",
        ),
        (
            {
                **REVIEW_V1,
                "stages": [
                    {
                        "id": "x",
                        "name": {"zh": "x"},
                        "assignee": {"user": "dr.li"},
                        "when": "grade >= 3",
                    }
                ],
            },
            "when",
        ),
        (
            {
                **REVIEW_V1,
                "stages": [
                    {"id": "x", "name": {"zh": "x"}, "assignee": {"user": "dr.li"}, "mode": "most"}
                ],
            },
            "mode",
        ),
    ]
    for body, expected in bad_bodies:
        async with demo.db.transaction() as s:
            with pytest.raises(DomainError) as caught:
                await approvals.publish_definition(s, body)
        assert caught.value.code == "VALIDATION" and caught.value.field == "definition"
        assert expected in caught.value.message, caught.value.message
