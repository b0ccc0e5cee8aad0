"""The hash-chained history of every instance: stream `approval:{id}`.

Every state change appends here in the same transaction as the change itself. Inside an
action (see `batched`) the events are buffered and appended together when the action
ends, locking each stream head once instead of once per event.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import (
    append_event,
    append_events,
    expected_stream_sources,
    stream_events,
    verify_stream,
)
from api.auth import Actor
from api.models.approvals import ApprovalInstance
from api.models.audit import AuditEvent, AuditStream

_BUFFER = "approval_history_buffer"
_HEADS = "approval_history_heads"  # stream -> head hash after this transaction's last append
P = ParamSpec("P")
R = TypeVar("R")


def stream_for(instance_id: int) -> str:
    return f"approval:{instance_id}"


async def record(
    session: AsyncSession,
    instance: ApprovalInstance,
    action: str,
    *,
    actor: Actor | None,
    at: datetime,
    **data: Any,
) -> None:
    assert instance.id is not None
    buffer = session.info.get(_BUFFER)
    if buffer is None:
        event = await append_event(
            session, stream_for(instance.id), action, actor=actor, data=data, at=at
        )
        _known_heads(session)[event.stream] = event.hash
    else:
        buffer.append((stream_for(instance.id), (action, actor, data, at)))


def _known_heads(session: AsyncSession) -> dict[str, str]:
    """Heads appended to in the current transaction (a new transaction starts afresh)."""
    transaction = session.sync_session.get_transaction()
    held = session.info.get(_HEADS)
    if held is None or held[0] is not transaction:
        held = session.info[_HEADS] = (transaction, {})
    return held[1]


async def flush_history(session: AsyncSession) -> dict[str, str]:
    """Append what the current action buffered (call before code that reads the chain).
    Returns the head hash of each stream appended to in this transaction."""
    buffer = session.info.get(_BUFFER)
    if not buffer:
        return {}
    by_stream: dict[str, list[tuple[str, Actor | None, dict[str, Any], datetime]]] = {}
    for stream, event in buffer:
        by_stream.setdefault(stream, []).append(event)
    buffer.clear()
    heads = _known_heads(session)
    for stream, events in by_stream.items():
        heads[stream] = (await append_events(session, stream, events))[-1].hash
    return heads


async def head_hash(session: AsyncSession, instance_id: int) -> str:
    """The chain head of the instance's stream, including every event buffered so far."""
    await flush_history(session)
    stream = stream_for(instance_id)
    known = _known_heads(session).get(stream)
    if known is not None:  # appended in this transaction, which holds the head's lock
        return known
    head = await session.get(AuditStream, stream, populate_existing=True)
    return head.last_hash if head else ""


def batched(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Buffer the history events of an action (its first argument is the session)."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        session = args[0]
        assert isinstance(session, AsyncSession)
        if _BUFFER in session.info:  # an action inside another: the outer one appends
            return await fn(*args, **kwargs)
        session.info[_BUFFER] = []
        try:
            result = await fn(*args, **kwargs)
            await flush_history(session)
            return result
        finally:
            session.info.pop(_BUFFER, None)

    return wrapper


async def instance_history(session: AsyncSession, instance_id: int) -> list[AuditEvent]:
    return await stream_events(session, stream_for(instance_id))


async def history_verified(session: AsyncSession, instance_id: int) -> bool:
    """Whether the instance's hash chain is intact (the check `bedside audit verify` makes)."""
    return await verify_stream(session, stream_for(instance_id)) is None


async def _approval_streams(session: AsyncSession) -> Iterable[str]:
    ids = (await session.execute(sa.select(ApprovalInstance.id))).scalars()
    return [stream_for(i) for i in ids]


# `bedside audit verify` reports an instance whose whole history was deleted.
if _approval_streams not in expected_stream_sources:
    expected_stream_sources.append(_approval_streams)
