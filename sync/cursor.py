"""The pull cursor, and why it never skips a change committed by a concurrent transaction.

The trap: a plain sequence or `now()` stamped on a row is assigned when the writing
transaction *runs*, but the row becomes visible when it *commits*. Transaction A takes
version 41, transaction B takes 42 and commits first; a pull between the two commits
sees 42, hands out cookie 42, and A's row (41) is never sent.

Known cures:
- Replicache's global / per-space version: one version row per space, incremented and
  locked (`SELECT ... FOR UPDATE`) by every writing transaction and held until commit,
  so versions are handed out in commit order. Correct, but it serializes every write of
  the space, and every write path (GraphQL, bots, HL7, jobs), not only sync pushes,
  would have to remember to take the lock.
- PowerSync reads PostgreSQL's write-ahead log through logical replication: the stream
  is in commit order and its checkpoints contain only fully committed transactions.
  Correct too, but it needs a replication slot and a separate service, and nothing like
  it exists for the embedded SQLite default.
- Transaction ids and snapshots, inside the database: stamp each change with the
  writer's `pg_current_xact_id()` and let the reader's snapshot say which ids are
  committed. A transaction not visible to a snapshot has an id >= the snapshot's `xmin`
  (the oldest still running), or is in its in-progress list (`xip`).

We take the third: commit-consistent like the WAL stream, without a global lock. A trigger on each synced table writes `sync_change(entity,
entity_id, txid)` for every insert/update/delete by any path (no writer has to
cooperate, no global lock). A pull runs in one REPEATABLE READ transaction and stores
its snapshot (`pg_current_snapshot()`, "xmin:xmax:xip...") with the client view it hands
out. The next pull asks for changes
    txid >= previous xmin  AND  NOT pg_visible_in_snapshot(txid, previous snapshot)
which is exactly the set of transactions that committed between the two snapshots: a
writer that was still running at the previous pull is in `xip` (or >= xmax) and is
picked up by the first pull that can see it. No duplicates, no skips, and the range
condition keeps it an index scan on (entity, txid).

On SQLite (the embedded single-node default) only one transaction writes at a time,
so the log's autoincrement id is already in commit order: the snapshot is the highest
id the pull could see.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.db import Database
from api.models.sync import SyncChange


@asynccontextmanager
async def snapshot_session(db: Database) -> AsyncIterator[AsyncSession]:
    """One transaction whose every statement reads the same snapshot."""
    if db.is_postgres:
        engine = db.engine.execution_options(isolation_level="REPEATABLE READ")
        async with AsyncSession(bind=engine, expire_on_commit=False) as session, session.begin():
            yield session
    else:
        async with db.transaction() as session:
            yield session


async def current_snapshot(session: AsyncSession) -> str:
    if session.bind.dialect.name == "postgresql":
        return str(
            (await session.execute(sa.text("SELECT pg_current_snapshot()::text"))).scalar_one()
        )
    return str(
        (
            await session.execute(sa.select(sa.func.coalesce(sa.func.max(SyncChange.id), 0)))
        ).scalar_one()
    )


def snapshot_xmin(snapshot: str) -> int:
    return int(snapshot.split(":", 1)[0])


async def changed_ids(
    session: AsyncSession, entity: str, since: str, until: str, scope: sa.Select[Any]
) -> set[int]:
    """Ids of `entity` rows in `scope` changed by transactions committed after `since`.

    `until` is the reading transaction's own snapshot: rows it cannot see are invisible
    to the query anyway, so it only matters on SQLite, where it bounds the id range.
    """
    stmt = (
        sa.select(SyncChange.entity_id)
        .distinct()
        .where(SyncChange.entity == entity, SyncChange.entity_id.in_(scope))
    )
    if session.bind.dialect.name == "postgresql":
        stmt = stmt.where(
            SyncChange.txid >= snapshot_xmin(since),
            ~sa.func.pg_visible_in_snapshot(
                sa.cast(sa.cast(SyncChange.txid, sa.Text), _Xid8()),
                sa.cast(sa.cast(sa.literal(since, sa.Text), sa.Text), _PgSnapshot()),
            ),
        )
    else:
        stmt = stmt.where(SyncChange.id > int(since), SyncChange.id <= int(until))
    return set((await session.execute(stmt)).scalars())


class _Xid8(sa.types.UserDefinedType[Any]):
    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "xid8"


class _PgSnapshot(sa.types.UserDefinedType[Any]):
    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "pg_snapshot"
