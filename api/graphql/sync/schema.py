"""syncPush / syncPull (the offline protocol, see `sync`) and the conflicts inbox."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from api.graphql.context import Info
from api.graphql.permissions import IsAuthenticated, IsStaff
from api.graphql.scalars import parse_id
from api.graphql.sync.types import (
    ConflictResolution,
    SyncConflict,
    SyncPullResult,
    SyncPushInput,
    SyncPushResult,
)
from sync import conflicts, pull, push


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[IsAuthenticated, IsStaff],
        description="Changes to the caller's offline view since `cookie`.",
    )
    async def sync_pull(
        self, info: Info, cookie: str | None = None, client_group_id: str | None = None
    ) -> SyncPullResult:
        actor = info.context.require_actor()
        result = await pull.pull(
            info.context.services, actor, cookie=cookie, client_group_id=client_group_id
        )
        return SyncPullResult.from_result(result)

    @strawberry.field(
        permission_classes=[IsAuthenticated, IsStaff],
        description="Values that lost a same-field edit race.",
    )
    async def sync_conflicts(self, info: Info, status: str | None = "open") -> list[SyncConflict]:
        actor = info.context.require_actor()
        async with info.context.read() as session:
            rows = await conflicts.list_conflicts(session, actor, status=status)
        return [SyncConflict.from_row(r) for r in rows]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated, IsStaff],
        description="Apply a device's queued mutations, exactly once each.",
    )
    async def sync_push(self, info: Info, input: SyncPushInput) -> SyncPushResult:
        actor = info.context.require_actor()
        request = push.PushRequest(
            client_group_id=input.client_group_id,
            client_id=input.client_id,
            schema_version=input.schema_version,
            mutations=[
                push.PushMutation(
                    id=m.id,
                    name=m.name,
                    args=m.args if isinstance(m.args, dict) else {"_": m.args},
                    client_time=m.client_time,
                )
                for m in input.mutations
            ],
        )
        return SyncPushResult.from_result(await push.push(info.context.services, actor, request))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated, IsStaff],
        description="Keep the server's value, take yours, or write another.",
    )
    async def resolve_sync_conflict(
        self,
        info: Info,
        id: strawberry.ID,
        resolution: ConflictResolution,
        value: JSON | None = None,
    ) -> SyncConflict:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            row = await conflicts.resolve_conflict(
                session,
                info.context.services,
                parse_id(id),
                actor=actor,
                resolution=resolution.value,
                value=value,
            )
        return SyncConflict.from_row(row)
