from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from api.services import Services
from tests.conftest import redis_test_url
from tests.notifications.harness import Sink, running_sink

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(*args: int) -> datetime:
    """A Shanghai wall-clock time (2026-12-07 is a Monday and a working day)."""
    return datetime(*args, tzinfo=SHANGHAI)


@pytest.fixture
def redis_url() -> str:
    url = redis_test_url()
    if url is None:
        pytest.skip("Redis is not available")
    return url


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    async with running_sink() as s:
        yield s


@pytest.fixture
async def notify_services(demo: Services, redis_url: str, sink: Sink) -> Services:
    """The demo hospital with Redis and the webhook sink configured."""
    settings = demo.settings.model_copy(
        update={"redis_url": redis_url, "notify_webhook_url": sink.url}
    )
    return Services(settings=settings, db=demo.db, hashing=demo.hashing, cipher=demo.cipher)


from tests.simulators.platforms import platform_sim, platform_sim_server  # noqa: E402,F401


@pytest.fixture(autouse=True)
def no_wakers_from_other_tests() -> Iterator[None]:
    """These tests drive every sweep themselves at an injected time. A waker left
    registered by another test's app (an arq kicker on the same queue) would start a
    sweep at the real time beside them, so none may be registered while they run."""
    from notifications.outbox import wakeup

    saved = list(wakeup._wakers)
    wakeup._wakers.clear()
    yield
    wakeup._wakers[:] = saved
