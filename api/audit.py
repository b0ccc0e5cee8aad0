"""Tamper-evident history and the access log.

Every approval instance, privilege and penalty has a stream of events. Each event's hash
is sha256 over the previous hash and the canonical JSON of the event, and the stream's
head row keeps the length and the last hash, so `verify_chains` finds an edited, inserted
or deleted event, including a deleted tail.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from api.auth import Actor
from api.models.audit import AccessLog, AuditEvent, AuditStream
from api.models.base import utcnow

GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(
    prev_hash: str,
    *,
    stream: str,
    seq: int,
    action: str,
    actor_id: int | None,
    at: datetime,
    data: dict[str, Any],
) -> str:
    body = canonical_json(
        {
            "stream": stream,
            "seq": seq,
            "action": action,
            "actor": actor_id,
            "at": at.isoformat(),
            "data": data,
        }
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def _insert(session: AsyncSession):  # type: ignore[no-untyped-def]
    return postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert  # type: ignore[union-attr]


async def append_event(
    session: AsyncSession,
    stream: str,
    action: str,
    *,
    actor: Actor | None,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> AuditEvent:
    """Append one event to `stream` inside the caller's transaction."""
    insert = _insert(session)
    await session.execute(
        insert(AuditStream)
        .values(stream=stream, last_seq=0, last_hash=GENESIS, created_at=utcnow())
        .on_conflict_do_nothing()
    )
    head = (
        await session.execute(
            sa.select(AuditStream).where(AuditStream.stream == stream).with_for_update()
        )
    ).scalar_one()
    # Round-trip the data through JSON so what is hashed is exactly what is stored.
    payload = json.loads(canonical_json(data or {}))
    at = at or utcnow()
    seq = head.last_seq + 1
    actor_id = actor.user_id if actor and actor.user_id else None
    digest = event_hash(
        head.last_hash,
        stream=stream,
        seq=seq,
        action=action,
        actor_id=actor_id,
        at=at,
        data=payload,
    )
    event = AuditEvent(
        stream=stream,
        seq=seq,
        action=action,
        actor_id=actor_id,
        at=at,
        data=payload,
        prev_hash=head.last_hash,
        hash=digest,
    )
    session.add(event)
    head.last_seq = seq
    head.last_hash = digest
    await session.flush()
    return event


async def open_streams(
    session: AsyncSession,
    events: list[tuple[str, str, Actor | None, dict[str, Any]]],
) -> list[AuditEvent]:
    """Start new streams (stream, action, actor, data), each with its first event, in two
    batched inserts: for streams named after rows inserted in this transaction (2,000 new
    accounts), which cannot have a head yet. A stream that exists already makes the
    insert fail, as two writers forking a chain must."""
    at = utcnow()
    heads, rows = [], []
    for stream, action, actor, data in events:
        payload = json.loads(canonical_json(data or {}))
        actor_id = actor.user_id if actor and actor.user_id else None
        digest = event_hash(
            GENESIS, stream=stream, seq=1, action=action, actor_id=actor_id, at=at, data=payload
        )
        heads.append(AuditStream(stream=stream, last_seq=1, last_hash=digest, created_at=at))
        rows.append(
            AuditEvent(
                stream=stream,
                seq=1,
                action=action,
                actor_id=actor_id,
                at=at,
                data=payload,
                prev_hash=GENESIS,
                hash=digest,
            )
        )
    session.add_all(heads)
    session.add_all(rows)
    await session.flush()
    return rows


async def append_events(
    session: AsyncSession,
    stream: str,
    events: list[tuple[str, Actor | None, dict[str, Any], datetime]],
) -> list[AuditEvent]:
    """Append several events (action, actor, data, at) to one stream, in order, locking
    its head once: the same chain as calling `append_event` for each, fewer round trips."""
    if not events:
        return []
    insert = _insert(session)
    # Create-or-lock the head and read it in one statement: DO UPDATE takes the row lock
    # and RETURNING gives the latest committed values.
    upsert = insert(AuditStream).values(
        stream=stream, last_seq=0, last_hash=GENESIS, created_at=utcnow()
    )
    upsert = upsert.on_conflict_do_update(
        index_elements=[AuditStream.stream], set_={"stream": upsert.excluded.stream}
    )
    head = (
        await session.execute(
            sa.select(AuditStream)
            .from_statement(upsert.returning(AuditStream))
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    rows = []
    last_seq, last_hash = head.last_seq, head.last_hash
    for action, actor, data, at in events:
        payload = json.loads(canonical_json(data or {}))
        seq = last_seq + 1
        actor_id = actor.user_id if actor and actor.user_id else None
        digest = event_hash(
            last_hash, stream=stream, seq=seq, action=action, actor_id=actor_id, at=at, data=payload
        )
        rows.append(
            AuditEvent(
                stream=stream,
                seq=seq,
                action=action,
                actor_id=actor_id,
                at=at,
                data=payload,
                prev_hash=last_hash,
                hash=digest,
            )
        )
        last_seq, last_hash = seq, digest
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        await _write_events_and_head(session, stream, rows)
        # The session's copy of the head now says what the row says (no UPDATE of its own).
        set_committed_value(head, "last_seq", last_seq)
        set_committed_value(head, "last_hash", last_hash)
    else:
        head.last_seq, head.last_hash = last_seq, last_hash
        session.add_all(rows)
        await session.flush()
    return rows


async def _write_events_and_head(
    session: AsyncSession, stream: str, rows: list[AuditEvent]
) -> None:
    """PostgreSQL: the events and the head's new position in one statement (the insert
    as a data-modifying CTE of the head's update). The events are not added to the
    session; what is stored is exactly what was hashed."""
    columns = ("stream", "seq", "action", "actor_id", "at", "data", "prev_hash", "hash")
    appended = (
        sa.insert(AuditEvent.__table__)
        .values([{c: getattr(r, c) for c in columns} for r in rows])
        .cte("appended")
    )  # type: ignore[attr-defined]
    table = AuditStream.__table__  # type: ignore[attr-defined]
    last = rows[-1]
    await session.execute(
        sa.update(table)
        .where(table.c.stream == stream)
        .values(last_seq=last.seq, last_hash=last.hash)
        .add_cte(appended)
    )


async def stream_events(session: AsyncSession, stream: str) -> list[AuditEvent]:
    result = await session.execute(
        sa.select(AuditEvent).where(AuditEvent.stream == stream).order_by(AuditEvent.seq)
    )
    return list(result.scalars())


@dataclass
class ChainBreak:
    stream: str
    seq: int | None
    event_id: int | None
    reason: str

    def __str__(self) -> str:
        where = f"event {self.event_id} (seq {self.seq})" if self.event_id else f"seq {self.seq}"
        return f"{self.stream}: {where}: {self.reason}"


# Areas register how to list the streams that must exist (one per approval instance …),
# so deleting a whole stream, head and all, is found too.
ExpectedStreams = Callable[[AsyncSession], Awaitable[Iterable[str]]]
expected_stream_sources: list[ExpectedStreams] = []


async def verify_chains(session: AsyncSession) -> list[ChainBreak]:
    breaks: list[ChainBreak] = []
    heads = {h.stream: h for h in (await session.execute(sa.select(AuditStream))).scalars()}
    seen: set[str] = set()
    current: str | None = None
    expected_seq = 1
    prev = GENESIS
    broken_stream = False

    def close_stream(stream: str | None) -> None:
        if stream is None or broken_stream:
            return
        head = heads.get(stream)
        if head is None:
            breaks.append(ChainBreak(stream, None, None, "chain head missing"))
        elif head.last_seq != expected_seq - 1 or head.last_hash != prev:
            breaks.append(
                ChainBreak(
                    stream,
                    head.last_seq,
                    None,
                    f"events end at seq {expected_seq - 1} but the head records seq {head.last_seq}",
                )
            )

    rows = await session.stream_scalars(
        sa.select(AuditEvent).order_by(AuditEvent.stream, AuditEvent.seq)
    )
    async for ev in rows:
        if ev.stream != current:
            close_stream(current)
            current, expected_seq, prev, broken_stream = ev.stream, 1, GENESIS, False
            seen.add(ev.stream)
        if broken_stream:
            continue
        reason = None
        if ev.seq != expected_seq:
            reason = (
                f"expected seq {expected_seq}, found {ev.seq} (an event was deleted or inserted)"
            )
        elif ev.prev_hash != prev:
            reason = "previous hash does not match"
        elif (
            event_hash(
                prev,
                stream=ev.stream,
                seq=ev.seq,
                action=ev.action,
                actor_id=ev.actor_id,
                at=ev.at,
                data=ev.data,
            )
            != ev.hash
        ):
            reason = "content does not match its hash (edited)"
        if reason:
            breaks.append(ChainBreak(ev.stream, ev.seq, ev.id, reason))
            broken_stream = True
            continue
        prev = ev.hash
        expected_seq += 1
    close_stream(current)

    for stream, head in heads.items():
        if stream not in seen and head.last_seq > 0:
            breaks.append(ChainBreak(stream, None, None, f"all {head.last_seq} events are missing"))
    for source in expected_stream_sources:
        for stream in await source(session):
            if stream not in heads:
                breaks.append(
                    ChainBreak(stream, None, None, "history missing for an existing record")
                )
    return breaks


async def record_access(
    session: AsyncSession,
    actor: Actor | None,
    resource: str,
    *,
    action: str = "query",
    detail: dict[str, Any] | None = None,
) -> None:
    """One row for every query that returns patient data and every export."""
    session.add(
        AccessLog(
            actor_id=actor.user_id if actor and actor.user_id else None,
            action=action,
            resource=resource,
            detail=detail or {},
            ip=actor.ip if actor else None,
            request_id=actor.request_id if actor else None,
        )
    )
    await session.flush()
