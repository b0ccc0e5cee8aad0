"""Without Redis the app's lifespan delivers in process, woken by the commit itself."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx

from api.app import create_app
from api.domain.people import user_by_username
from api.models.notifications import NotificationPreference
from api.services import Services
from tests.conftest import GraphQLClient
from tests.notifications.harness import Sink


async def test_in_process_runner_delivers_after_commit(
    notify_services: Services, sink: Sink
) -> None:
    embedded = notify_services.settings.model_copy(
        update={"redis_url": None, "notify_sweep_seconds": 3600.0}
    )
    services = Services(
        settings=embedded,
        db=notify_services.db,
        hashing=notify_services.hashing,
        cipher=notify_services.cipher,
    )
    async with services.db.transaction() as session:
        doctor = await user_by_username(session, "dr.li")
        session.add(NotificationPreference(user_id=doctor.id, channels=["webhook"]))
    app = create_app(embedded, services=services)
    async with app.router.lifespan_context(app):
        # The runner's first sweep runs at start-up; after that only a commit wakes it
        # (the periodic sweep is an hour away in this test).
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http:
            ma = await GraphQLClient(http).as_user("ma.zhao")
            await ma.data(
                "mutation($i: PenaltyScoreInput!) { recordPenaltyScore(input: $i) { id } }",
                {
                    "i": {
                        "doctorUsername": "dr.li",
                        "itemCode": "HX-02",
                        "occurredAt": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                    }
                },
            )
            async with asyncio.timeout(20):
                while not sink.to(doctor.id):  # noqa: ASYNC110 - the sink is another task's server
                    await asyncio.sleep(0.05)
    assert sink.to(doctor.id)[0]["title"].startswith("不良执业记分通知")
