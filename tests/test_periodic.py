"""The periodic work of every area runs with the notification sweep, once installed."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from api import periodic
from api.models.base import utcnow
from api.services import Services
from notifications.delivery.scheduled import run_scheduled


async def test_every_area_runs_with_the_sweep_and_a_failing_job_does_not_stop_the_others(
    demo: Services,
) -> None:
    periodic.install(demo)
    async with demo.db.session() as session:
        slots_before = (
            await session.execute(sa.text("SELECT count(*) FROM treatment_slot"))
        ).scalar_one()
    # A month ahead the slot window moves on, so new slots appear; nothing is overdue.
    done = await run_scheduled(demo, utcnow() + timedelta(days=30))
    assert done["approvals.escalated"] == 0
    assert done["treatments.slots created"] > 0
    assert done["bots.taps decided"] == 0
    async with demo.db.session() as session:
        assert (
            await session.execute(sa.text("SELECT count(*) FROM treatment_slot"))
        ).scalar_one() == slots_before + done["treatments.slots created"]
