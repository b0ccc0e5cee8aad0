"""Routing: which of a person's channels reaches them, in their order."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from notifications.delivery import bulk
from notifications.delivery.channels import DEFAULT_ORDER, Channel
from notifications.delivery.rows import PREFS


async def load_prefs(session: AsyncSession, user_ids: list[int]) -> dict[int, Any]:
    """The people's notification preferences (rows), by user id; none for the default."""
    found: dict[int, Any] = {}
    columns = (
        PREFS.c.user_id,
        PREFS.c.channels,
        PREFS.c.quiet_start,
        PREFS.c.quiet_end,
        PREFS.c.digest,
    )
    for where in bulk.id_filters(session, PREFS.c.user_id, user_ids):
        found.update(
            (r.user_id, r) for r in (await session.execute(sa.select(*columns).where(where))).all()
        )
    return found


class Router:
    def __init__(self, channels: dict[str, Channel]) -> None:
        self.channels = channels

    def order(self, pref: Any) -> list[str]:
        """The person's channels in their order, those this process has configured."""
        order = list(pref.channels) if pref is not None and pref.channels else list(DEFAULT_ORDER)
        return [name for name in order if name in self.channels]

    async def addresses_many(
        self, session: AsyncSession, channel: Channel, user_ids: list[int]
    ) -> dict[int, list[Any]]:
        many = getattr(channel, "addresses_many", None)
        if many is not None:
            return dict(await many(session, user_ids))
        return {u: await channel.addresses(session, u) for u in user_ids}

    async def first_channels(
        self, session: AsyncSession, user_ids: list[int], prefs: dict[int, Any]
    ) -> dict[int, tuple[str, list[Any]]]:
        """Each person's first channel that reaches them, with the addresses there: one
        lookup per channel and round (people unreachable on their first choice go on to
        their next one in the following round)."""
        orders = {u: self.order(prefs.get(u)) for u in user_ids}
        position = {u: 0 for u in user_ids if orders[u]}
        found: dict[int, tuple[str, list[Any]]] = {}
        while position:
            by_channel: dict[str, list[int]] = defaultdict(list)
            for u, i in position.items():
                by_channel[orders[u][i]].append(u)
            nxt: dict[int, int] = {}
            for name, ids in by_channel.items():
                reached = await self.addresses_many(session, self.channels[name], ids)
                for u in ids:
                    if reached.get(u):
                        found[u] = (name, reached[u])
                    elif position[u] + 1 < len(orders[u]):
                        nxt[u] = position[u] + 1
            position = nxt
        return found

    async def route(self, session: AsyncSession, user_id: int) -> list[str]:
        """Every channel that reaches one person, in their order (for a fallback)."""
        pref = (await load_prefs(session, [user_id])).get(user_id)
        return [
            name
            for name in self.order(pref)
            if await self.channels[name].addresses(session, user_id)
        ]

    async def addresses_of(
        self, session: AsyncSession, dispatches: list[Any]
    ) -> dict[int, list[Any]]:
        """Where each dispatch goes now (a dispatch sent again: the addresses may change)."""
        by_channel: dict[str, set[int]] = defaultdict(set)
        for d in dispatches:
            if d.channel in self.channels:
                by_channel[d.channel].add(d.recipient_id)
        reached = {
            name: await self.addresses_many(session, self.channels[name], sorted(ids))
            for name, ids in by_channel.items()
        }
        return {d.id: reached.get(d.channel, {}).get(d.recipient_id, []) for d in dispatches}
