"""Routing through the service layer: sequential steps, 会签, 或签, conditions, versions."""

from __future__ import annotations

from api.domain import approvals
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
