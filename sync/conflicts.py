"""Conflicts a therapist sees and resolves: the value that lost a same-field race.

A conflict is resolved by keeping the server's value, taking the losing value, or
writing a new one; the last two write through the same domain service as any edit
(the entity's registered `writer`), so permissions and validation apply as usual.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor
from api.errors import DomainError, ErrorCode, forbidden, invalid, not_found
from api.models.base import utcnow
from api.models.sync import SyncConflict
from api.services import Services
from sync.merge import FieldConflict
from sync.registry import MutationContext

# entity -> writer(session, services, actor, entity_id, field, value)
Writer = Callable[[AsyncSession, Services, Actor, int, str, Any], Awaitable[None]]
WRITERS: dict[str, Writer] = {}


def writer(entity: str) -> Callable[[Writer], Writer]:
    def register(fn: Writer) -> Writer:
        WRITERS[entity] = fn
        return fn

    return register


async def record(
    ctx: MutationContext, entity: str, entity_id: int, found: list[FieldConflict]
) -> None:
    for c in found:
        ctx.session.add(
            SyncConflict(
                user_id=ctx.actor.user_id,
                client_id=ctx.client_id,
                mutation_id=ctx.mutation_id,
                entity=entity,
                entity_id=entity_id,
                field=c.field,
                base_value=c.base,
                losing_value=c.losing,
                winning_value=c.winning,
                client_won=c.client_won,
                created_at=ctx.now,
            )
        )
    if found:
        await ctx.session.flush()


async def list_conflicts(
    session: AsyncSession, actor: Actor, *, status: str | None = "open"
) -> list[SyncConflict]:
    stmt = (
        sa.select(SyncConflict)
        .where(SyncConflict.user_id == actor.user_id)
        .order_by(SyncConflict.id)
    )
    if status:
        stmt = stmt.where(SyncConflict.status == status)
    return list((await session.execute(stmt)).scalars())


RESOLUTIONS = ("keep", "mine", "custom")


async def resolve_conflict(
    session: AsyncSession,
    services: Services,
    conflict_id: int,
    *,
    actor: Actor,
    resolution: str,
    value: Any = None,
) -> SyncConflict:
    from sync import registry

    registry.load()  # the areas register their writers
    conflict = await session.get(SyncConflict, conflict_id, with_for_update=True)
    if conflict is None:
        raise not_found("冲突", "conflict")
    if conflict.user_id != actor.user_id and not actor.is_admin:
        raise forbidden("只能处理自己的冲突 / only your own conflicts")
    if conflict.status != "open":
        raise DomainError(ErrorCode.ALREADY_DECIDED, "冲突已处理 / conflict already resolved")
    if resolution not in RESOLUTIONS:
        raise invalid("resolution", "无效的处理方式 / invalid resolution")
    chosen = {"keep": None, "mine": conflict.losing_value, "custom": value}[resolution]
    if resolution != "keep":
        write = WRITERS.get(conflict.entity)
        if write is None:
            raise invalid("resolution", "该记录不支持此处理 / cannot write this record")
        await write(session, services, actor, conflict.entity_id, conflict.field, chosen)
    conflict.status = "resolved"
    conflict.resolution = resolution
    conflict.resolved_by = actor.user_id
    conflict.resolved_at = utcnow()
    await session.flush()
    return conflict
