"""syncPull: what changed in this user's partial view since the cookie.

The cookie names a client view record (`sync_client_view`): the keys the device holds
after that pull and the database snapshot the pull read. A new pull
1. opens a REPEATABLE READ transaction and takes its snapshot;
2. computes the user's view as it is now (each entity's scope: the department's
   patients, appointments in a window, ...), ids only;
3. reads the change log for rows committed after the cookie's snapshot (see
   `sync.cursor`) that are in the view;
4. answers puts = changed rows in the view + rows that entered the view, and
   deletes = keys the device holds that left the view (deleted on the server, moved to
   another department, permission revoked, slid out of the window);
5. stores the new view and snapshot as the next cookie.
Old cookies stay valid for a while (a retried pull after a lost answer diffs against
what the device really has); an unknown or foreign cookie gets a reset (clear + full view).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import record_access
from api.auth import Actor
from api.errors import forbidden, invalid
from api.models.base import utcnow
from api.models.sync import SyncClient, SyncClientGroup, SyncClientView
from api.services import Services
from sync import cursor, registry

KEEP_VIEWS_PER_GROUP = 8


@dataclass
class PullResult:
    cookie: str
    reset: bool
    puts: list[dict[str, Any]] = field(default_factory=list)  # {entity, id, data}
    deletes: list[dict[str, Any]] = field(default_factory=list)  # {entity, id}
    last_mutation_ids: dict[str, int] = field(default_factory=dict)


def key(entity: str, entity_id: int) -> str:
    return f"{entity}:{entity_id}"


def parse_cookie(cookie: str | None) -> int | None:
    if not cookie:
        return None
    try:
        return int(cookie)
    except ValueError:
        raise invalid("cookie", "无效的同步游标 / invalid cookie") from None


async def _ensure_group(session: AsyncSession, actor: Actor, client_group_id: str) -> None:
    if not client_group_id or len(client_group_id) > 64:
        raise invalid("clientGroupId", "无效的客户端标识 / invalid clientGroupId")
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        insert(SyncClientGroup)
        .values(id=client_group_id, user_id=actor.user_id, created_at=utcnow())
        .on_conflict_do_nothing()
    )
    owner = (
        await session.execute(
            sa.select(SyncClientGroup.user_id).where(SyncClientGroup.id == client_group_id)
        )
    ).scalar_one()
    if owner != actor.user_id:
        raise forbidden("该设备已由其他用户使用 / this client group belongs to another user")


async def pull(
    services: Services,
    actor: Actor,
    *,
    cookie: str | None,
    client_group_id: str | None,
    now: datetime | None = None,
) -> PullResult:
    registry.load()
    now = now or utcnow()
    view_id = parse_cookie(cookie)
    async with cursor.snapshot_session(services.db) as session:
        snapshot = await cursor.current_snapshot(session)
        previous = await session.get(SyncClientView, view_id) if view_id else None
        if previous is not None and (
            previous.user_id != actor.user_id
            or (client_group_id and previous.client_group_id != client_group_id)
        ):
            previous = None  # another user's or another device's cookie: start over
        group_id = client_group_id or (previous.client_group_id if previous else None)
        if not group_id:
            raise invalid(
                "clientGroupId",
                "首次同步需提供 clientGroupId / clientGroupId is required without a cookie",
            )
        await _ensure_group(session, actor, group_id)

        held = set(previous.keys) if previous else set()
        view: set[str] = set()
        puts_by_entity: dict[str, set[int]] = {}
        for name, spec in registry.ENTITIES.items():
            scope = spec.scope(actor, now)
            ids = set((await session.execute(scope)).scalars())
            view.update(key(name, i) for i in ids)
            wanted = {i for i in ids if key(name, i) not in held}
            if previous is not None:
                wanted |= await cursor.changed_ids(
                    session, name, previous.snapshot, snapshot, scope
                )
            puts_by_entity[name] = wanted

        puts: list[dict[str, Any]] = []
        for name, ids in puts_by_entity.items():
            if not ids:
                continue
            spec = registry.ENTITIES[name]
            id_column = spec.model.id
            for chunk_start in range(0, len(ids), 1000):
                chunk = sorted(ids)[chunk_start : chunk_start + 1000]
                rows = (
                    await session.execute(sa.select(spec.model).where(id_column.in_(chunk)))
                ).scalars()
                puts.extend(
                    {"entity": name, "id": row.id, "data": spec.serialize(row, services)}
                    for row in rows
                )
        deletes = [
            {"entity": k.split(":", 1)[0], "id": int(k.split(":", 1)[1])}
            for k in sorted(held - view)
        ]

        clients = (
            await session.execute(
                sa.select(SyncClient.id, SyncClient.last_mutation_id).where(
                    SyncClient.client_group_id == group_id
                )
            )
        ).all()
        record = SyncClientView(
            client_group_id=group_id,
            user_id=actor.user_id,
            snapshot=snapshot,
            keys=sorted(view),
            created_at=now,
        )
        session.add(record)
        await session.flush()
        kept = (
            sa.select(SyncClientView.id)
            .where(SyncClientView.client_group_id == group_id)
            .order_by(SyncClientView.id.desc())
            .limit(KEEP_VIEWS_PER_GROUP)
            .scalar_subquery()
        )
        await session.execute(
            sa.delete(SyncClientView).where(
                SyncClientView.client_group_id == group_id, SyncClientView.id.not_in(kept)
            )
        )
        patients = [p["id"] for p in puts if p["entity"] == "patient"]
        if puts:
            await record_access(
                session, actor, "sync_pull", detail={"patients": patients[:500], "puts": len(puts)}
            )
    return PullResult(
        cookie=str(record.id),
        reset=previous is None,
        puts=puts,
        deletes=deletes,
        last_mutation_ids={cid: lmid for cid, lmid in clients},
    )
