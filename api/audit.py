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
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from api.auth import Actor
from api.models.audit import AccessLog, AccessLogPatient, AuditEvent, AuditStream
from api.models.base import UTCDateTime, utcnow

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
    return (await append_events(session, stream, [(action, actor, data or {}, at or utcnow())]))[0]


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
    postgres = session.bind.dialect.name == "postgresql"  # type: ignore[union-attr]
    if postgres:
        last_seq, last_hash = (
            await session.execute(
                _LOCK_HEAD, {"stream": stream, "genesis": GENESIS, "now": utcnow()}
            )
        ).one()
    else:
        head = await _lock_head_orm(session, stream)
        last_seq, last_hash = head.last_seq, head.last_hash
    rows = []
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
    if postgres:
        await _write_events_and_head(session, stream, rows)
        # A head row this session already holds now says what the table says.
        held = session.sync_session.identity_map.get(identity_key(AuditStream, (stream,)))
        if held is not None:
            set_committed_value(held, "last_seq", last_seq)
            set_committed_value(held, "last_hash", last_hash)
    else:
        head.last_seq, head.last_hash = last_seq, last_hash
        session.add_all(rows)
        await session.flush()
    return rows


async def _lock_head_orm(session: AsyncSession, stream: str) -> AuditStream:
    """SQLite: create-or-lock the head and read it (DO UPDATE takes the row lock)."""
    upsert = sqlite.insert(AuditStream).values(
        stream=stream, last_seq=0, last_hash=GENESIS, created_at=utcnow()
    )
    upsert = upsert.on_conflict_do_update(
        index_elements=[AuditStream.stream], set_={"stream": upsert.excluded.stream}
    )
    return (
        await session.execute(
            sa.select(AuditStream)
            .from_statement(upsert.returning(AuditStream))
            .execution_options(populate_existing=True)
        )
    ).scalar_one()


# PostgreSQL: two fixed statements per append, whatever the number of events, so both
# are prepared once per connection and never compiled again. The first creates or locks
# the head (DO UPDATE takes the row lock; RETURNING gives the latest committed values).
_LOCK_HEAD = sa.text(
    "INSERT INTO audit_stream (stream, last_seq, last_hash, created_at)"
    " VALUES (:stream, 0, :genesis, :now)"
    " ON CONFLICT (stream) DO UPDATE SET stream = EXCLUDED.stream"
    " RETURNING last_seq, last_hash"
).bindparams(sa.bindparam("now", type_=UTCDateTime()))

# The second writes the events (as arrays, one row each) and moves the head, in one
# statement: the insert is a data-modifying CTE of the head's update.
_APPEND = sa.text(
    "WITH appended AS ("
    " INSERT INTO audit_event (stream, seq, action, actor_id, at, data, prev_hash, hash)"
    " SELECT :stream, e.seq, e.action, e.actor_id, e.at, e.data::jsonb, e.prev_hash, e.hash"
    " FROM unnest(CAST(:seqs AS integer[]), CAST(:actions AS text[]),"
    " CAST(:actor_ids AS integer[]), CAST(:ats AS timestamptz[]), CAST(:datas AS text[]),"
    " CAST(:prev_hashes AS text[]), CAST(:hashes AS text[]))"
    " AS e(seq, action, actor_id, at, data, prev_hash, hash)"
    " RETURNING 1)"
    " UPDATE audit_stream SET last_seq = :last_seq, last_hash = :last_hash WHERE stream = :stream"
)


async def _write_events_and_head(
    session: AsyncSession, stream: str, rows: list[AuditEvent]
) -> None:
    """The events are not added to the session; what is stored is exactly what was
    hashed (the data as its JSON text)."""
    last = rows[-1]
    await session.execute(
        _APPEND,
        {
            "stream": stream,
            "seqs": [r.seq for r in rows],
            "actions": [r.action for r in rows],
            "actor_ids": [r.actor_id for r in rows],
            "ats": [_aware(r.at) for r in rows],
            "datas": [json.dumps(r.data, ensure_ascii=False) for r in rows],
            "prev_hashes": [r.prev_hash for r in rows],
            "hashes": [r.hash for r in rows],
            "last_seq": last.seq,
            "last_hash": last.hash,
        },
    )


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("naive datetime given; Bedside stores aware UTC times only")
    return moment


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


def _event_problem(ev: AuditEvent, expected_seq: int, prev: str) -> str | None:
    """Why an event does not continue its chain at `expected_seq` after `prev`, if it does not."""
    if ev.seq != expected_seq:
        return f"expected seq {expected_seq}, found {ev.seq} (an event was deleted or inserted)"
    if ev.prev_hash != prev:
        return "previous hash does not match"
    expected = event_hash(
        prev,
        stream=ev.stream,
        seq=ev.seq,
        action=ev.action,
        actor_id=ev.actor_id,
        at=ev.at,
        data=ev.data,
    )
    if expected != ev.hash:
        return "content does not match its hash (edited)"
    return None


async def verify_stream(session: AsyncSession, stream: str) -> ChainBreak | None:
    """The first break in one stream's chain (None when intact), as `verify_chains` finds it."""
    head = await session.get(AuditStream, stream)
    prev, expected_seq = GENESIS, 1
    for ev in await stream_events(session, stream):
        reason = _event_problem(ev, expected_seq, prev)
        if reason:
            return ChainBreak(stream, ev.seq, ev.id, reason)
        prev, expected_seq = ev.hash, expected_seq + 1
    if head is None:
        return ChainBreak(stream, None, None, "chain head missing")
    if head.last_seq != expected_seq - 1 or head.last_hash != prev:
        return ChainBreak(stream, head.last_seq, None, "the events end before the head")
    return None


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
        reason = _event_problem(ev, expected_seq, prev)
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
    patient_ids: Iterable[int | None] | None = None,
) -> None:
    """One row for every query or command that returns patient data and every export.

    `patient_ids` are the patients the answer carries; each is kept apart
    (`access_log_patient`) so "who saw patient X" is one indexed lookup.
    """
    ids = sorted({int(i) for i in patient_ids or () if i is not None})
    row = AccessLog(
        actor_id=actor.user_id if actor and actor.user_id else None,
        action=action,
        resource=resource,
        detail={**(detail or {}), **({"patient_ids": ids} if patient_ids is not None else {})},
        ip=actor.ip if actor else None,
        request_id=actor.request_id if actor else None,
    )
    session.add(row)
    await session.flush()
    if ids:
        await session.execute(
            sa.insert(AccessLogPatient),
            [{"access_log_id": row.id, "patient_id": i} for i in ids],
        )


async def patient_access_log(
    session: AsyncSession, patient_id: int, *, limit: int = 500
) -> list[AccessLog]:
    """Who saw the patient: the access-log rows that returned them, newest first."""
    stmt = (
        sa.select(AccessLog)
        .join(AccessLogPatient, AccessLogPatient.access_log_id == AccessLog.id)
        .where(AccessLogPatient.patient_id == patient_id)
        .order_by(AccessLog.at.desc(), AccessLog.id.desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())
