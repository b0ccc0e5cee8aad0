"""The embedded default: without Redis the app's lifespan runs the same sweep in
process, woken after each commit that wrote notices and every few seconds anyway."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from api.models.base import utcnow
from notifications.delivery.dispatcher import Dispatcher
from notifications.delivery.heap import settle_heap
from notifications.delivery.scheduled import run_scheduled
from notifications.outbox import wakeup

log = logging.getLogger("bedside.notifications")


class InProcessRunner:
    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        interval: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.dispatcher = dispatcher
        self.interval = interval
        self.clock = clock
        self.event = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def _wake(self) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.event.set)

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        settle_heap()
        wakeup.register(self._wake)
        self.task = asyncio.create_task(self._run(), name="bedside-notifications")

    async def stop(self) -> None:
        wakeup.unregister(self._wake)
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        await self.dispatcher.aclose()

    async def _run(self) -> None:
        while True:
            self.event.clear()
            try:
                now = self.clock()
                await self.dispatcher.sweep(now)
                await run_scheduled(self.dispatcher.services, now)
            except Exception:  # noqa: BLE001 - keep running; the next sweep retries
                log.exception("notification sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.event.wait(), self.interval)
