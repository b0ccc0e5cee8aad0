from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON

from api.graphql.rows import from_row
from api.models.sync import SyncConflict as SyncConflictRow
from sync.pull import PullResult
from sync.push import MutationResult, PushResult


@strawberry.enum
class SyncStatus(Enum):
    APPLIED = "applied"
    MERGED = "merged"
    CONFLICT = "conflict"
    REJECTED = "rejected"
    PENDING = "pending"
    OUT_OF_ORDER = "out_of_order"


@strawberry.input
class SyncMutationInput:
    id: int
    name: str
    args: JSON
    client_time: datetime | None = strawberry.field(
        default=None, description="Device clock; informational only."
    )


@strawberry.input
class SyncPushInput:
    client_group_id: str
    client_id: str
    schema_version: int
    mutations: list[SyncMutationInput]


@strawberry.type
class SyncMutationResult:
    id: int
    status: SyncStatus
    code: str | None
    reason: str | None
    replayed: bool
    entity: str | None
    entity_id: int | None
    conflicts: JSON = strawberry.field(description="Per field: base, winning, losing, clientWon.")
    server: JSON | None = strawberry.field(description="The record as the server now has it.")
    detail: JSON

    @classmethod
    def from_result(cls, r: MutationResult) -> SyncMutationResult:
        d = r.detail or {}
        return cls(
            id=r.id,
            status=SyncStatus(r.status),
            code=r.code,
            reason=r.reason,
            replayed=r.replayed,
            entity=d.get("entity"),
            entity_id=d.get("entityId"),
            conflicts=d.get("conflicts") or [],
            server=d.get("server"),
            detail=d,
        )


@strawberry.type
class SyncPushResult:
    last_mutation_id: int
    results: list[SyncMutationResult]

    @classmethod
    def from_result(cls, r: PushResult) -> SyncPushResult:
        return cls(
            last_mutation_id=r.last_mutation_id,
            results=[SyncMutationResult.from_result(x) for x in r.results],
        )


@strawberry.type
class SyncPut:
    entity: str
    id: strawberry.ID
    data: JSON


@strawberry.type
class SyncDelete:
    entity: str
    id: strawberry.ID


@strawberry.type
class SyncClientState:
    client_id: str
    last_mutation_id: int


@strawberry.type
class SyncPullResult:
    cookie: str
    reset: bool = strawberry.field(description="Clear the device's copy before applying the puts.")
    puts: list[SyncPut]
    deletes: list[SyncDelete]
    last_mutation_id_changes: list[SyncClientState]

    @classmethod
    def from_result(cls, r: PullResult) -> SyncPullResult:
        return cls(
            cookie=r.cookie,
            reset=r.reset,
            puts=[
                SyncPut(entity=p["entity"], id=strawberry.ID(str(p["id"])), data=p["data"])
                for p in r.puts
            ],
            deletes=[
                SyncDelete(entity=d["entity"], id=strawberry.ID(str(d["id"]))) for d in r.deletes
            ],
            last_mutation_id_changes=[
                SyncClientState(client_id=k, last_mutation_id=v)
                for k, v in sorted(r.last_mutation_ids.items())
            ],
        )


@strawberry.enum
class ConflictResolution(Enum):
    KEEP_SERVER = "keep"
    USE_MINE = "mine"
    CUSTOM = "custom"


@strawberry.type
class SyncConflict:
    id: strawberry.ID
    entity: str
    entity_id: int
    field: str
    base_value: JSON | None
    losing_value: JSON | None
    winning_value: JSON | None
    client_won: bool = strawberry.field(
        description="True when the device's value replaced the server's."
    )
    status: str
    resolution: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: SyncConflictRow) -> SyncConflict:
        return from_row(cls, row)
