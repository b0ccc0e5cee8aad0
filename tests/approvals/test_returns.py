"""退回: to the applicant or to an earlier step; parallel branches that approved stand."""

from __future__ import annotations

from typing import Any

import pytest

from api.domain import approvals
from api.errors import DomainError
from api.models.approvals import ApprovalInstance
from api.services import Services
from tests.approvals.helpers import REVIEW_V1, actor, decide, pending, start

THREE_STEPS: dict[str, Any] = {
    "key": "test_three",
    "version": 1,
    "name": {"zh": "三级审批"},
    "stages": [
        {"id": "head", "name": {"zh": "科主任"}, "assignee": {"department_head": "applicant"}},
        {"id": "ma", "name": {"zh": "医务处"}, "assignee": {"role": "medical_affairs"}},
        {
            "id": "final",
            "parallel": [
                {
                    "id": "vp_branch",
                    "steps": [
                        {"id": "vp", "name": {"zh": "副院长"}, "assignee": {"user": "vp.chen"}}
                    ],
                },
                {
                    "id": "party_branch",
                    "steps": [
                        {
                            "id": "party",
                            "name": {"zh": "党支部"},
                            "assignee": {"role": "party_branch"},
                        }
                    ],
                },
            ],
        },
    ],
}


async def test_return_to_applicant_redoes_only_the_returning_branch(demo: Services) -> None:
    """Grade 4: MA approved, VP returns to the applicant; on resubmission only VP is asked."""
    async with demo.db.transaction() as s:
        await approvals.publish_definition(s, REVIEW_V1)
        instance = await start(s, {"grade": 4})
    async with demo.db.transaction() as s:
        await decide(s, instance.id, "chief.wang")
    async with demo.db.transaction() as s:
        await decide(s, instance.id, "ma.zhao", comment="同意")
    async with demo.db.transaction() as s:
        await decide(s, instance.id, "vp.chen", "return", comment="请补充麻醉评估")
    async with demo.db.session() as s:
        row = await s.get(ApprovalInstance, instance.id)
        assert row.status == "returned" and await pending(s, instance.id) == []
    async with demo.db.transaction() as s:
        row = await s.get(ApprovalInstance, instance.id)
        await approvals.resubmit_instance(
            s, row, actor=await actor(s, "dr.li"), data={"grade": 4, "anesthesia": "全麻"}
        )
    async with demo.db.transaction() as s:
        assert await pending(s, instance.id) == [("vp_sign", "vp.chen")]
        await decide(s, instance.id, "vp.chen")
    async with demo.db.session() as s:
        row = await s.get(ApprovalInstance, instance.id)
        assert row.status == "approved"
        actions = [e.action for e in await approvals.instance_history(s, instance.id)]
        assert actions.count("returned") == 1 and actions.count("resubmitted") == 1
        resubmitted = next(
            e for e in await approvals.instance_history(s, instance.id) if e.action == "resubmitted"
        )
        assert resubmitted.data["changed_fields"] == ["anesthesia"]


async def test_return_to_an_earlier_step_leaves_the_parallel_branch_standing(
    demo: Services,
) -> None:
    async with demo.db.transaction() as s:
        await approvals.publish_definition(s, THREE_STEPS)
        instance = await start(s, {}, key="test_three")
    for who in ("chief.wang", "ma.zhao", "party.liu"):
        async with demo.db.transaction() as s:
            await decide(s, instance.id, who)
    async with demo.db.transaction() as s:
        assert await pending(s, instance.id) == [("vp", "vp.chen")]
        await decide(
            s, instance.id, "vp.chen", "return", comment="医务处意见不完整", return_to="ma"
        )
    async with demo.db.transaction() as s:
        # Back at medical affairs; the party branch's approval stands, the head's too.
        assert await pending(s, instance.id) == [("ma", "ma.zhao")]
        assert (await s.get(ApprovalInstance, instance.id)).status == "running"
        await decide(s, instance.id, "ma.zhao")
    async with demo.db.transaction() as s:
        assert await pending(s, instance.id) == [("vp", "vp.chen")]
        await decide(s, instance.id, "vp.chen")
    async with demo.db.session() as s:
        assert (await s.get(ApprovalInstance, instance.id)).status == "approved"


async def test_return_needs_a_comment_and_a_valid_earlier_step(demo: Services) -> None:
    async with demo.db.transaction() as s:
        await approvals.publish_definition(s, THREE_STEPS)
        instance = await start(s, {}, key="test_three")
    async with demo.db.transaction() as s:
        await decide(s, instance.id, "chief.wang")
    for kwargs, field in [
        ({"comment": None}, "comment"),
        ({"comment": "x", "return_to": "vp"}, "returnTo"),  # a later step
        ({"comment": "x", "return_to": "ma"}, "returnTo"),  # itself
        ({"comment": "x", "return_to": "nope"}, "returnTo"),
    ]:
        async with demo.db.transaction() as s:
            with pytest.raises(DomainError) as caught:
                await decide(s, instance.id, "ma.zhao", "return", **kwargs)
        assert (caught.value.code, caught.value.field) == ("VALIDATION", field)
    async with demo.db.session() as s:
        assert await pending(s, instance.id) == [("ma", "ma.zhao")]


async def test_return_targets_are_earlier_completed_steps_of_the_same_branch(
    demo: Services, gql
) -> None:  # type: ignore[no-untyped-def]
    async with demo.db.transaction() as s:
        await approvals.publish_definition(s, REVIEW_V1)
        instance = await start(s, {"grade": 4})
    async with demo.db.transaction() as s:
        await decide(s, instance.id, "chief.wang")
    async with demo.db.transaction() as s:
        await decide(s, instance.id, "ma.zhao")  # the other parallel branch is done
    query = "{ myTasks { id status step { id } returnTargets { id name } } }"
    vp = (await (await gql.as_user("vp.chen")).data(query))["myTasks"]
    assert [(t["step"]["id"], [r["id"] for r in t["returnTargets"]]) for t in vp] == [
        ("vp_sign", ["head"])
    ]
    assert vp[0]["returnTargets"][0]["name"] == "科主任审批"
