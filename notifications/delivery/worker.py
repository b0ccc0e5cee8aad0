"""`bedside worker`: arq workers run the sweep on a cron and whenever the API kicks them.

The API enqueues a `sweep` job after each commit that wrote notices (see `ArqKicker`);
if Redis is down that kick is lost but the outbox row is not, and the cron sweep of a
worker finds it once Redis is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from arq import create_pool, cron, func
from arq.connections import ArqRedis, RedisSettings

from api.assembly import install_domain
from api.models.base import utcnow
from api.services import Services
from api.settings import Settings, load_settings
from notifications.delivery.dispatcher import Dispatcher
from notifications.delivery.heap import settle_heap
from notifications.delivery.scheduled import run_scheduled
from notifications.delivery.setup import build_dispatcher
from notifications.outbox import wakeup

log = logging.getLogger("bedside.notifications")

QUEUE = "bedside:notifications"


async def sweep(ctx: dict[str, Any], now: str | None = None) -> dict[str, Any]:
    """One sweep at `now` (ISO time; tests pass it) or the worker's clock."""
    moment = datetime.fromisoformat(now) if now else ctx["clock"]()
    dispatcher: Dispatcher = ctx["dispatcher"]
    report = await dispatcher.sweep(moment)
    scheduled = await run_scheduled(dispatcher.services, moment)
    return {**report.__dict__, **scheduled}


async def _cron_sweep(ctx: dict[str, Any]) -> dict[str, Any]:
    return await sweep(ctx)


async def startup(ctx: dict[str, Any]) -> None:
    if "dispatcher" not in ctx:
        install_domain()
        services = Services.build(load_settings())
        ctx["services"] = services
        ctx["dispatcher"] = build_dispatcher(services)
        if "prepare" in ctx:
            ctx["prepare"](services)
    ctx.setdefault("clock", utcnow)
    settle_heap()


async def shutdown(ctx: dict[str, Any]) -> None:
    if ctx.get("owns_services", True) and "services" in ctx:
        await ctx["dispatcher"].aclose()
        await ctx["services"].db.dispose()


def redis_settings(url: str) -> RedisSettings:
    settings = RedisSettings.from_dsn(url)
    settings.conn_retries = 0
    settings.conn_timeout = 1
    return settings


def worker_options(
    settings: Settings,
    *,
    dispatcher: Dispatcher | None = None,
    clock: Callable[[], datetime] | None = None,
    cron_seconds: int | None = 10,
) -> dict[str, Any]:
    """Keyword arguments for `arq.Worker` (the CLI and the tests build workers the same way)."""
    ctx: dict[str, Any] = {}
    if dispatcher is not None:
        ctx = {"dispatcher": dispatcher, "services": dispatcher.services, "owns_services": False}
    if clock is not None:
        ctx["clock"] = clock
    assert settings.redis_url, "the arq worker needs BEDSIDE_REDIS_URL"
    return {
        "functions": [func(sweep, name="sweep", keep_result=60, max_tries=1)],
        "cron_jobs": (
            [
                cron(
                    _cron_sweep,
                    name="cron_sweep",
                    second=set(range(0, 60, cron_seconds)),
                    unique=True,
                    run_at_startup=True,
                    keep_result=0,
                )
            ]
            if cron_seconds
            else []
        ),
        "on_startup": startup,
        "on_shutdown": shutdown,
        "redis_settings": redis_settings(settings.redis_url),
        "queue_name": QUEUE,
        "ctx": ctx,
        "max_jobs": 4,
        "handle_signals": False,
    }


class ArqKicker:
    """In the API: after a commit that wrote notices, ask the workers for a sweep."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.pool: ArqRedis | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        wakeup.register(self.kick)

    async def stop(self) -> None:
        wakeup.unregister(self.kick)
        for task in list(self.tasks):
            task.cancel()
        if self.pool is not None:
            await self.pool.aclose()

    def kick(self) -> None:
        if self.loop is None:
            return
        task = self.loop.create_task(self._kick())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _kick(self) -> None:
        try:
            if self.pool is None:
                self.pool = await create_pool(
                    redis_settings(self.redis_url), default_queue_name=QUEUE
                )
            # One kick per 100 ms at most: a burst of commits becomes one sweep.
            await self.pool.enqueue_job("sweep", _job_id=f"kick:{time.time_ns() // 100_000_000}")
        except Exception as exc:  # noqa: BLE001 - Redis down: the cron sweep delivers later
            log.warning(
                "could not ask the workers for a sweep (%s); the periodic sweep will deliver",
                type(exc).__name__,
            )
            pool, self.pool = self.pool, None
            if pool is not None:
                try:
                    await pool.aclose()
                except Exception:  # noqa: BLE001
                    pass


async def run_worker(
    settings: Settings, *, prepare: Callable[[Services], object] | None = None
) -> None:
    """`prepare` is given the worker's Services once built (the CLI installs the other
    areas' periodic jobs with it)."""
    from arq import Worker

    options = worker_options(settings)
    if prepare is not None:
        options["ctx"]["prepare"] = prepare
    worker = Worker(**{**options, "handle_signals": True})
    try:
        await worker.async_run()
    except asyncio.CancelledError:
        # SIGTERM / SIGINT: arq stops by cancelling its main task. That is a clean stop,
        # not a crash to print a traceback for (operators read these logs).
        pass
    finally:
        await worker.close()
