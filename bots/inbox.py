"""The inbox of card taps: a tap is committed, answered, then decided.

A platform's deadline (5 s) is for the answer; what it needs to know is that the tap will
not be lost. So a verified tap is written to `bot_tap` (one INSERT; a redelivery with the
same callback id is a no-op) and answered at once; the decision runs right after the
answer in the same process, inside the transaction that marks the tap processed, and
`sweep_taps` (worker, `bedside bots sweep`) decides any tap a stopped process left.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from api.models.base import utcnow
from api.models.bots import BotTap
from api.services import Services
from bots.cards.decisions import TapResult, decide_stored_tap
from bots.cards.delivery import after_tap

log = logging.getLogger("bedside.bots")

STALE_AFTER = timedelta(seconds=10)  # a tap this old and undecided was left by a stopped process
DECIDING_AT_ONCE = 4  # decisions in flight per process: answers to new taps stay quick


async def record(
    services: Services, platform: str, callback_id: str, tap: dict[str, Any]
) -> int | None:
    """Store the tap; None when the platform already delivered it (a retry)."""
    try:
        async with services.db.transaction() as session:
            row = BotTap(
                platform=platform, callback_id=callback_id[:120], tap=tap, received_at=utcnow()
            )
            session.add(row)
            await session.flush()
            return row.id
    except IntegrityError:
        return None


async def exists(services: Services, platform: str, callback_id: str) -> bool:
    """Whether the tap with this callback id is stored already."""
    async with services.db.session() as session:
        found = await session.execute(
            sa.select(BotTap.id).where(
                BotTap.platform == platform, BotTap.callback_id == callback_id[:120]
            )
        )
        return found.first() is not None


async def process(services: Services, tap_id: int) -> TapResult | None:
    """Decide one stored tap (once), then send the card changes it caused."""
    decided = await decide_stored_tap(services, tap_id)
    if decided is None:
        return None  # already decided (a concurrent processor or an earlier run)
    platform, external_id, result = decided
    await after_tap(services, platform, result, external_id)
    return result


class TapProcessor:
    """Decides stored taps in detached tasks, a few at a time.

    Detached, not a response's background task: a background task holds the HTTP
    connection until it ends, so the platform's next callback on that keep-alive
    connection would wait for this one's decision.
    """

    def __init__(self, services: Services) -> None:
        self.services = services
        self.tasks: set[asyncio.Task[None]] = set()
        self._gate: asyncio.Semaphore | None = None

    def submit(self, tap_id: int) -> None:
        task = asyncio.get_running_loop().create_task(self._run(tap_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, tap_id: int) -> None:
        if self._gate is None:
            self._gate = asyncio.Semaphore(DECIDING_AT_ONCE)
        async with self._gate:
            try:
                await process(self.services, tap_id)
            except Exception:  # noqa: BLE001 - the sweep decides it later
                log.exception("tap %s not decided now; the sweep will retry", tap_id)

    async def drain(self) -> None:
        """Wait until every submitted tap is decided (shutdown, tests)."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)


def submit(services: Services, tap_id: int) -> None:
    """Decide the stored tap in this process, unless a `bedside bots work` process does."""
    if services.settings.bots_decide_in_process:
        processor(services).submit(tap_id)


async def work(
    services: Services, *, poll_seconds: float = 0.1, stop: asyncio.Event | None = None
) -> None:
    """`bedside bots work`: decide stored taps as they arrive (several processes may run)."""
    gate = asyncio.Semaphore(DECIDING_AT_ONCE)

    async def one(tap_id: int) -> None:
        async with gate:
            try:
                await process(services, tap_id)
            except Exception:  # noqa: BLE001 - the next round retries it
                log.exception("tap %s not decided", tap_id)

    while stop is None or not stop.is_set():
        async with services.db.session() as session:
            ids = (
                (
                    await session.execute(
                        sa.select(BotTap.id)
                        .where(BotTap.processed_at.is_(None))
                        .order_by(BotTap.id)
                        .limit(200)
                    )
                )
                .scalars()
                .all()
            )
        if ids:
            await asyncio.gather(*(one(tap_id) for tap_id in ids))
        else:
            await asyncio.sleep(poll_seconds)


def processor(services: Services) -> TapProcessor:
    existing = services.extras.get("tap_processor")
    if existing is None:
        existing = services.extras["tap_processor"] = TapProcessor(services)
    return existing


async def sweep_taps(services: Services, *, older_than: timedelta = STALE_AFTER) -> int:
    async with services.db.session() as session:
        ids = (
            (
                await session.execute(
                    sa.select(BotTap.id)
                    .where(
                        BotTap.processed_at.is_(None), BotTap.received_at < utcnow() - older_than
                    )
                    .order_by(BotTap.id)
                    .limit(500)
                )
            )
            .scalars()
            .all()
        )
    for tap_id in ids:
        try:
            await process(services, tap_id)
        except Exception:  # noqa: BLE001 - one bad tap must not stop the rest
            log.exception("tap %s not processed", tap_id)
    return len(ids)
