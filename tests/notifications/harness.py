"""Test harness: a local HTTP sink that honours Idempotency-Key, and an arq worker over
the real Redis whose sweeps run at times the test chooses."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import uvicorn
from arq import Worker, create_pool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from api.services import Services
from notifications.delivery.dispatcher import Dispatcher
from notifications.delivery.worker import QUEUE, redis_settings, worker_options


@dataclass
class Sink:
    """Receives webhook messages; a repeated Idempotency-Key is acknowledged, not kept."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    url: str = ""

    def app(self) -> Starlette:
        async def receive(request: Request) -> JSONResponse:
            key = request.headers["idempotency-key"]
            body = json.loads(await request.body())
            self.requests.append({"key": key, **body})
            first = self.messages.setdefault(key, {"key": key, **body})
            return JSONResponse(
                {"ok": True},
                headers={
                    "x-message-id": f"m-{list(self.messages).index(key)}-{first['recipient_id']}"
                },
            )

        return Starlette(routes=[Route("/hook", receive, methods=["POST"])])

    def to(self, recipient_id: int) -> list[dict[str, Any]]:
        return [m for m in self.messages.values() if m["recipient_id"] == recipient_id]


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Run an ASGI app with uvicorn on 127.0.0.1 (a free port); yield its base URL."""
    # Keep-alive longer than any test: tests inject time, so real seconds between two sends
    # must not decide whether a pooled connection is still open.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", timeout_keep_alive=600
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes no event
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.asynccontextmanager
async def running_sink() -> AsyncIterator[Sink]:
    sink = Sink()
    async with serve(sink.app()) as base:
        sink.url = f"{base}/hook"
        yield sink


class ArqHarness:
    """A real arq worker on the test Redis; `await h.sweep(now)` runs one sweep job there."""

    def __init__(self, services: Services, dispatcher: Dispatcher, *, kill: bool = False) -> None:
        self.kill = kill  # leave as if the process died: cancel whatever is running
        self.services = services
        self.dispatcher = dispatcher
        self.worker: Worker | None = None
        self.task: asyncio.Task[Any] | None = None
        self.pool: Any = None

    async def __aenter__(self) -> ArqHarness:
        settings = self.services.settings
        self.pool = await create_pool(redis_settings(settings.redis_url), default_queue_name=QUEUE)  # type: ignore[arg-type]
        await self.pool.flushdb()
        self.worker = Worker(
            **{
                **worker_options(settings, dispatcher=self.dispatcher, cron_seconds=None),
                "poll_delay": 0.01,
            }
        )
        self.task = asyncio.create_task(self.worker.async_run())
        return self

    async def sweep(self, now: datetime) -> dict[str, Any]:
        job = await self.pool.enqueue_job("sweep", now=now.isoformat())
        return await job.result(timeout=30, poll_delay=0.01)

    async def __aexit__(self, *exc: Any) -> None:
        if self.worker is not None:
            # A job whose result the test already read may still be writing it: let it
            # finish, so closing the worker does not cancel it half way.
            running = [t for t in self.worker.tasks.values() if not t.done()]
            if running and exc[0] is None and not self.kill:
                await asyncio.wait(running, timeout=10)
            with contextlib.suppress(asyncio.CancelledError):
                await self.worker.close()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task
        await self.pool.aclose()
        await self.dispatcher.aclose()
