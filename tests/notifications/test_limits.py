"""Platform limits shape delivery: WeCom drops silently beyond 30 messages a minute to one
member, so a burst for one person goes out 30 at a time and the rest waits its minute."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from api.domain.people import user_by_username
from api.models.notifications import NoticeDispatch, NotificationPreference
from api.services import Services
from notifications import outbox
from notifications.delivery.setup import build_dispatcher
from tests.notifications.conftest import local
from tests.notifications.harness import ArqHarness
from tests.simulators.platforms import PlatformSimulator, simulated_services


async def test_a_burst_beyond_the_per_minute_limit_waits_for_the_next_minute(
    notify_services: Services, platform_sim: PlatformSimulator
) -> None:
    services = simulated_services(notify_services, platform_sim)
    async with services.db.transaction() as session:
        chief = await user_by_username(session, "chief.wang")
        session.add(NotificationPreference(user_id=chief.id, channels=["wecom"], digest=False))
        await outbox.enqueue_many(
            session,
            [
                {
                    "recipient_id": chief.id,
                    "kind": "info",
                    "title": f"通知 {i}",
                    "idempotency_key": f"burst:{i}",
                }
                for i in range(32)
            ],
        )
    t0 = local(2026, 12, 7, 9, 0)
    async with ArqHarness(services, build_dispatcher(services)) as h:
        first = await h.sweep(t0)
        assert (first["sent"], first["rate_limited"]) == (30, 2)  # counted within the one batch too
        assert len(platform_sim.messages_to("wecom", "chief.wang")) == 30
        await h.sweep(t0 + timedelta(seconds=30))
        assert len(platform_sim.messages_to("wecom", "chief.wang")) == 30  # the minute is not over
        # WeCom's own window (the simulator drops beyond 30 a minute) moves on as well
        platform_sim.state.clock_offset = 60
        later = await h.sweep(t0 + timedelta(minutes=1))
        assert later["sent"] == 2
    assert len(platform_sim.messages_to("wecom", "chief.wang")) == 32
    async with services.db.session() as session:
        statuses = (
            await session.execute(
                sa.select(NoticeDispatch.status, sa.func.count()).group_by(NoticeDispatch.status)
            )
        ).all()
    assert dict(statuses) == {"sent": 32}
