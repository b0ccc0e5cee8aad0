"""Queueing card changes inside the caller's transaction: every card of an instance
brought up to date, cards added for new pending tasks."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import record_access
from api.auth import Actor
from api.domain.people import external_id_for
from api.models.approvals import ApprovalInstance, ApprovalTask, TaskStatus
from api.models.bots import BotCard
from api.models.people import User
from api.services import Services
from bots import identity
from bots.cards.facts import PLATFORMS, card_key, task_facts, wanted_state
from integrations.platforms import get_platforms


def enabled_platforms(services: Services) -> list[str]:
    """Platforms whose card setup is complete (an incomplete one sends no card at all,
    rather than cards the platform refuses again at every sweep)."""
    platforms = get_platforms(services)
    clients = {p: getattr(platforms, p) for p in PLATFORMS}
    return [p for p, c in clients.items() if getattr(c, "cards_configured", c.configured)]


async def refresh_instance_cards(
    session: AsyncSession,
    services: Services,
    instance_id: int,
    *,
    notes: dict[int, str] | None = None,
    directory_lookup: bool = False,
) -> list[int]:
    """Bring every card of the instance up to date and add cards for new pending tasks.

    Returns the ids of card rows that need sending (for `flush` after the commit).
    `notes` adds a line to particular cards (by card id), e.g. "not your task".
    `directory_lookup` asks the platform's directory for unbound assignees' ids by mobile
    (the sweep does; a callback does not call out while it holds its transaction).
    """
    instance = await session.get(ApprovalInstance, instance_id)
    if instance is None:
        return []
    notes = notes or {}
    tasks = {
        t.id: t
        for t in (
            await session.execute(
                sa.select(ApprovalTask).where(ApprovalTask.instance_id == instance_id)
            )
        ).scalars()
    }
    cards = list(
        (
            await session.execute(sa.select(BotCard).where(BotCard.instance_id == instance_id))
        ).scalars()
    )
    dirty: list[int] = []
    facts_cache: dict[int, dict[str, str]] = {}
    for card in cards:
        task = tasks.get(card.task_id)
        if task is None:
            continue
        facts = card.wanted.get("facts") or facts_cache.get(task.id or 0)
        wanted = await wanted_state(
            session, services, task, instance, facts=facts, note=notes.get(card.id or 0, "")
        )
        if wanted != card.wanted:
            card.wanted = wanted
            card.dirty = True
        if card.dirty:
            dirty.append(card.id or 0)
    have = {(c.platform, c.task_id) for c in cards}
    for task in tasks.values():
        if task.status != TaskStatus.PENDING:
            continue
        for platform in enabled_platforms(services):
            if (platform, task.id) not in have:
                card_id = await _new_card(
                    session, services, platform, task, instance, facts_cache, directory_lookup
                )
                if card_id:
                    dirty.append(card_id)
    await session.flush()
    return dirty


async def _new_card(
    session: AsyncSession,
    services: Services,
    platform: str,
    task: ApprovalTask,
    instance: ApprovalInstance,
    facts_cache: dict[int, dict[str, str]],
    directory_lookup: bool,
) -> int | None:
    assignee = await session.get(User, task.assignee_id)
    if assignee is None or assignee.id is None:
        return None
    if directory_lookup:
        external_id = await identity.external_id_or_bind(session, services, platform, assignee)
    else:
        external_id = await external_id_for(session, assignee.id, platform)
    if external_id is None:
        return None  # not on this platform (yet): the PWA and other channels still reach them
    assert task.id is not None and instance.id is not None and assignee.id is not None
    facts = facts_cache.get(task.id) or await task_facts(session, services, task, instance)
    facts_cache[task.id] = facts
    card = BotCard(
        platform=platform,
        card_key=card_key(task.id, assignee.id),
        task_id=task.id,
        instance_id=instance.id,
        user_id=assignee.id,
        external_id=external_id,
        wanted=await wanted_state(session, services, task, instance, facts=facts),
    )
    session.add(card)
    await session.flush()
    if (instance.data or {}).get("patient_id") is not None:
        # The masked name leaves Bedside for the platform: an export in the access log.
        await record_access(
            session,
            Actor.from_user(assignee, via=platform),
            "approval_card",
            action="export",
            detail={
                "task_id": task.id,
                "patient_id": instance.data["patient_id"],
                "platform": platform,
            },
        )
    return card.id
