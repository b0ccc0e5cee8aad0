"""Remember the first result of a retried command and hand it back on a replay.

A key is the actor's own: it is stored per operation (`scope`) and per actor, so one
user's key never answers, or blocks, another user's command. The caller still checks that
the actor may see what a replay names before returning it (the actor may have lost the
access since the first call).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor
from api.errors import invalid
from api.models.audit import IdempotencyRecord

MAX_KEY_LENGTH = 120  # the column holds 200; a client's keys are uuids (36)


def check_key(key: str | None, field: str = "idempotencyKey") -> None:
    """A key too long for its column is the caller's input error, never a database error."""
    if key is not None and len(key) > MAX_KEY_LENGTH:
        raise invalid(
            field,
            f"幂等键最长 {MAX_KEY_LENGTH} 个字符 / idempotency key must be at most {MAX_KEY_LENGTH} characters",
        )


def actor_key(actor: Actor) -> str:
    """Who a key belongs to: the user, else the system path (HL7, jobs) that acted."""
    if actor.user_id:
        return f"user:{actor.user_id}"
    return f"{actor.via}:{actor.username}"[:80]


async def recall(
    session: AsyncSession, scope: str, key: str | None, *, actor: Actor
) -> dict[str, Any] | None:
    check_key(key)
    if not key:
        return None
    record = await session.get(IdempotencyRecord, (scope, actor_key(actor), key))
    return record.result if record else None


async def remember(
    session: AsyncSession, scope: str, key: str | None, result: dict[str, Any], *, actor: Actor
) -> None:
    """Store the result in the caller's transaction; a concurrent duplicate fails on the key."""
    check_key(key)
    if not key:
        return
    session.add(IdempotencyRecord(scope=scope, actor=actor_key(actor), key=key, result=result))
    await session.flush()


@dataclass
class Once:
    """One command's idempotency slot (scope, key and actor named once): `first` is the
    result an earlier call with this key stored (a replay), else None; `done` stores
    this call's result in the caller's transaction."""

    session: AsyncSession
    scope: str
    key: str | None
    actor: Actor
    first: dict[str, Any] | None

    async def done(self, result: dict[str, Any]) -> None:
        await remember(self.session, self.scope, self.key, result, actor=self.actor)


async def once(session: AsyncSession, scope: str, key: str | None, *, actor: Actor) -> Once:
    """The recall / remember pair of a retried command as one slot:

    slot = await once(session, SCOPE, key, actor=actor)
    if slot.first is not None:
        return replay(slot.first)
    ...
    await slot.done({"id": row.id})
    """
    return Once(session, scope, key, actor, await recall(session, scope, key, actor=actor))
