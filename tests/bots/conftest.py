"""Bots run against the platform simulator, real Redis (DB from BEDSIDE_TEST_REDIS_DB) and
the demo hospital, with a test-only approval definition routed like grade-4 surgery."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from redis.asyncio import Redis

from api.app import create_app
from api.domain import approvals
from api.services import Services
from tests.approvals.helpers import REVIEW_V1
from tests.conftest import redis_test_url
from tests.simulators.platforms import platform_sim, platform_sim_server, simulated_settings  # noqa: F401


@pytest.fixture
async def redis_url() -> AsyncIterator[str | None]:
    url = redis_test_url()
    if url is not None:
        client = Redis.from_url(url)
        await client.flushdb()
        await client.aclose()
    yield url


@pytest.fixture
async def bots(demo: Services, platform_sim, redis_url) -> AsyncIterator[Services]:  # noqa: F811
    """The demo hospital's services with every platform pointed at the simulator."""
    settings = simulated_settings(demo.settings, platform_sim, redis_url=redis_url)
    services = Services.build(settings, db=demo.db)
    async with services.db.transaction() as session:
        await approvals.publish_definition(session, REVIEW_V1)
    yield services
    platforms = services.extras.get("platforms")
    if platforms is not None:
        await platforms.aclose()


@pytest.fixture
async def bot_http(bots: Services) -> AsyncIterator[httpx.AsyncClient]:
    async with settled_client(bots) as client:
        yield client


@asynccontextmanager
async def settled_client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the app whose every response waits for the taps it stored to be
    decided (they are decided in detached tasks after the answer), so tests read settled state."""
    from bots import inbox

    async def settle(response: httpx.Response) -> None:
        await inbox.processor(services).drain()

    app = create_app(services.settings, services=services)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", event_hooks={"response": [settle]}
    ) as client:
        yield client
