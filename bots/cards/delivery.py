"""Sending cards after the commit: `flush`, the coalescing `Flusher`, the catch-up
`sweep`, and what follows a tap (the card changes, a binding prompt)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.models.approvals import ApprovalTask, TaskStatus
from api.models.bots import BotCard
from api.services import Services
from bots import dingtalk_cards, wecom_cards
from bots.cards.facts import SWEEP_BATCH
from bots.cards.refresh import enabled_platforms, refresh_instance_cards
from integrations.platforms import PlatformError, get_platforms

log = logging.getLogger("bedside.bots")


async def flush(services: Services, card_ids: list[int] | None = None) -> int:
    """Send or update dirty cards (the given ones, or all); returns how many went out."""
    done = 0
    async with services.db.transaction() as session:
        stmt = (
            sa.select(BotCard)
            .where(BotCard.dirty.is_(True))
            .order_by(BotCard.id)
            .limit(SWEEP_BATCH)
        )
        if card_ids is not None:
            if not card_ids:
                return 0
            stmt = stmt.where(BotCard.id.in_(card_ids))
        if services.db.is_postgres:
            stmt = stmt.with_for_update(skip_locked=True)  # two flushers never send one card twice
        for card in (await session.execute(stmt)).scalars():
            try:
                await _deliver(services, card, session)
                done += 1
            except PlatformError as exc:
                card.attempts += 1
                card.last_error = str(exc)[:500]
                log.warning("card %s on %s not delivered: %s", card.card_key, card.platform, exc)
    return done


async def _deliver(services: Services, card: BotCard, session: AsyncSession) -> None:
    platforms = get_platforms(services)
    now = wecom_cards.now_of(services)
    if card.shown is None:
        if card.wanted.get("state") != "pending":
            card.dirty = False  # decided before it was ever shown: nothing to send
            card.shown = card.wanted
            return
        if card.platform == "dingtalk":
            await dingtalk_cards.send_card(services, platforms.dingtalk, card)
        else:
            await wecom_cards.check_member_limit(
                session, services, card
            )  # beyond it: dropped silently
            card.response_code = await wecom_cards.send_card(services, platforms.wecom, card)
        card.sent_at = now
    elif card.shown != card.wanted:
        if card.platform == "dingtalk":
            await dingtalk_cards.update_card(services, platforms.dingtalk, card)
        else:
            if not card.response_code:
                raise PlatformError(
                    "wecom", "NO_RESPONSE_CODE", "no response code left to update this card"
                )
            await wecom_cards.update_card(services, platforms.wecom, card)
            card.response_code = None  # single use
        card.updated_at = now
    card.shown = card.wanted
    card.dirty = False
    card.last_error = None


class Flusher:
    """Coalesces the card sends of callbacks arriving together into one flush per tick.

    The ids are only a hint kept for a few milliseconds: the `dirty` rows in the database
    are the truth, and the sweep sends whatever a stopped process left behind.
    """

    def __init__(self, services: Services, delay: float = 0.02) -> None:
        self.services = services
        self.delay = delay
        self.pending: set[int] = set()
        self.batch: asyncio.Future[None] | None = None

    async def flush_soon(self, card_ids: list[int]) -> None:
        """Returns once a flush that includes these cards has run."""
        if not card_ids:
            return
        self.pending.update(card_ids)
        if self.batch is None:
            self.batch = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().create_task(self._run(self.batch))
        await asyncio.shield(self.batch)

    async def _run(self, batch: asyncio.Future[None]) -> None:
        await asyncio.sleep(self.delay)
        ids, self.pending, self.batch = sorted(self.pending), set(), None
        try:
            await flush(self.services, ids)
        except Exception:  # noqa: BLE001 - the sweep retries; callers must not fail
            log.exception("card flush failed")
        finally:
            batch.set_result(None)


def flusher(services: Services) -> Flusher:
    existing = services.extras.get("card_flusher")
    if existing is None:
        existing = services.extras["card_flusher"] = Flusher(services)
    return existing


async def sweep(services: Services) -> dict[str, int]:
    """Cards for pending tasks that have none yet, updates for cards whose task was decided
    elsewhere, then every unsent change."""
    platforms = enabled_platforms(services)
    queued = 0
    if platforms:
        async with services.db.transaction() as session:
            carded = (
                sa.select(BotCard.task_id)
                .where(BotCard.platform.in_(platforms))
                .group_by(BotCard.task_id)
                .having(sa.func.count() >= len(platforms))
            )
            # Newest first: an assignee who is on no platform keeps their task "uncarded"
            # for good, and such tasks must not crowd out new ones.
            instance_ids = (
                (
                    await session.execute(
                        sa.select(ApprovalTask.instance_id)
                        .where(
                            ApprovalTask.status == TaskStatus.PENDING,
                            ApprovalTask.id.not_in(carded),
                        )
                        .group_by(ApprovalTask.instance_id)
                        .order_by(sa.func.max(ApprovalTask.id).desc())
                        .limit(SWEEP_BATCH)
                    )
                )
                .scalars()
                .all()
            )
            # cards still showing buttons for tasks decided elsewhere (PWA, escalation, withdrawal)
            stale_ids = (
                (
                    await session.execute(
                        sa.select(BotCard.instance_id)
                        .join(ApprovalTask, ApprovalTask.id == BotCard.task_id)
                        .where(
                            ApprovalTask.status != TaskStatus.PENDING,
                            BotCard.wanted["state"].as_string() == "pending",
                        )
                        .group_by(BotCard.instance_id)
                        .limit(SWEEP_BATCH)
                    )
                )
                .scalars()
                .all()
            )
            for instance_id in sorted({*instance_ids, *stale_ids}):
                queued += len(
                    await refresh_instance_cards(
                        session, services, instance_id, directory_lookup=True
                    )
                )
    sent = await flush(services)
    return {"queued": queued, "sent": sent}


async def after_tap(services: Services, platform: str, result: Any, external_id: str) -> None:
    """After the answer: send the card changes, or ask an unbound user to bind."""
    await flusher(services).flush_soon(result.card_ids)
    if result.bind_link:
        prompt = (
            dingtalk_cards.send_bind_prompt
            if platform == "dingtalk"
            else wecom_cards.send_bind_prompt
        )
        await prompt(services, external_id, result.bind_link, result.message)
