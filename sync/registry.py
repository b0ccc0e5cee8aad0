"""What can be synced: entities devices hold (pull) and named mutators they send (push).

Both are plain registries filled at import time by the modules of `sync.areas`
(every module of those packages is imported by `load()`), so adding a mutator or an
entity touches no shared file.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor
from api.services import Services

# The newest client schema this server speaks, and the oldest whose queue it still
# upgrades. Bump SCHEMA_VERSION when a mutator's arguments change and add an upgrade.
SCHEMA_VERSION = 2
MIN_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class SyncEntity:
    """A kind of record a device holds: which rows are in a user's view, how they look."""

    name: str
    model: type[Any]
    # Ids of the rows in the actor's partial view (a SELECT of one id column).
    scope: Callable[[Actor, datetime], sa.Select[Any]]
    serialize: Callable[[Any, Services], dict[str, Any]]
    # Soft-deleted rows (deleted_at set) leave the view like any other row.


@dataclass
class Effect:
    """A notification an applied mutation implies; enqueued once after reconcile."""

    recipient_id: int
    kind: str
    title: str
    key: str  # deterministic: the same mutation (or the same fact) gives the same key
    body: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    subject_type: str | None = None
    subject_id: int | None = None
    critical: bool = False
    not_after: datetime | None = None  # stale after this instant (a slot already past)


@dataclass
class Outcome:
    """What a mutator did. `status` is applied, merged or conflict."""

    status: str = "applied"
    entity: str | None = None
    entity_id: int | None = None
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    server: dict[str, Any] | None = None  # the record as the server now has it
    effects: list[Effect] = field(default_factory=list)

    def as_result(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "entity": self.entity,
            "entityId": self.entity_id,
            "conflicts": self.conflicts,
            "server": self.server,
        }


@dataclass
class MutationContext:
    session: AsyncSession
    services: Services
    actor: Actor
    now: datetime  # server time; device clocks never order or version anything
    occurred_at: datetime  # the device's clientTime when plausible, else `now`
    client_group_id: str
    client_id: str
    mutation_id: int
    # Lookups shared by the mutations of one push (a department's head, ...): a queue of
    # thousands should not ask the database the same question thousands of times.
    memo: dict[Any, Any] = field(default_factory=dict)

    @property
    def idempotency_key(self) -> str:
        return f"sync:{self.client_id}:{self.mutation_id}"


Apply = Callable[[MutationContext, Any], Awaitable[Outcome]]


@dataclass(frozen=True)
class Mutator:
    name: str
    args: type[BaseModel]
    apply: Apply


@dataclass(frozen=True)
class Upgrade:
    """Rewrites a mutation queued by an older client into the next schema's form."""

    from_version: int
    name: str
    rewrite: Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]


ENTITIES: dict[str, SyncEntity] = {}
MUTATORS: dict[str, Mutator] = {}
UPGRADES: dict[tuple[int, str], Upgrade] = {}


def entity(item: SyncEntity) -> SyncEntity:
    ENTITIES[item.name] = item
    return item


def mutator(name: str, args: type[BaseModel]) -> Callable[[Apply], Apply]:
    def register(fn: Apply) -> Apply:
        MUTATORS[name] = Mutator(name=name, args=args, apply=fn)
        return fn

    return register


def upgrade(
    from_version: int, name: str
) -> Callable[[Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]], Any]:
    def register(fn: Callable[[dict[str, Any]], tuple[str, dict[str, Any]]]) -> Any:
        UPGRADES[(from_version, name)] = Upgrade(from_version, name, fn)
        return fn

    return register


_loaded = False


def load() -> None:
    """Import every module of sync.areas (each registers its entities and mutators) (once)."""
    global _loaded
    if _loaded:
        return
    import sync.areas

    for info in pkgutil.iter_modules(sync.areas.__path__):
        import_module(f"sync.areas.{info.name}")
    _loaded = True
