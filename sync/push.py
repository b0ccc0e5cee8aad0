"""syncPush: apply a client's queued mutations exactly once, in order.

For each mutation, in one transaction with the mutation's own effects:
- id <= the client's lastMutationId: a replay (lost acknowledgement); skipped, and the
  first answer is returned again;
- id  > lastMutationId + 1: a gap; the batch stops there, nothing after it is applied;
- otherwise the named mutator runs with the actor's permissions as they are now:
  * applied / merged / conflict: its changes, its notifications and the new
    lastMutationId commit together;
  * a permanent refusal (validation, permission, record deleted, unknown mutator, a
    schema too old to upgrade): recorded as rejected with code and reason, the id still
    advances, so one poison mutation never blocks the queue;
  * an attachment not uploaded yet: `pending`, the id does NOT advance and the batch
    stops (later mutations may build on this one). Nothing fails: the device uploads
    the file and pushes again. Other clients are not affected (the wait is per client);
  * a temporary failure (database down, serialization failure): the push fails with
    TEMPORARILY_UNAVAILABLE and the mutation's id does not advance.

Pushes of one client group (a PAD's page and its service worker) are serialized by
locking the group's row in every push transaction. Mutations are applied in chunks (one
transaction per chunk) so a three-day queue is not 5,000 round trips of BEGIN/COMMIT. A
chunk first runs without savepoints; only when one of its mutations does not apply is it
rolled back and run again with a savepoint per mutation from that one on. Outcome rows
and the new lastMutationId are written once per chunk.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor
from api.errors import DomainError, ErrorCode, forbidden, invalid
from api.models.base import utcnow
from api.models.sync import SyncClient, SyncClientGroup, SyncMutation
from api.services import Services
from sync import fanout, registry
from sync.attachments import AttachmentPending

log = logging.getLogger("bedside.sync")

CHUNK = 100
MAX_MUTATIONS_PER_PUSH = 1000
# A device's clientTime is believed within this window (a PAD may be offline for days);
# outside it (a clock a year off) the server's receive time is used instead.
MAX_OFFLINE = timedelta(days=14)
MAX_CLOCK_AHEAD = timedelta(minutes=5)


@dataclass
class PushMutation:
    id: int
    name: str
    args: dict[str, Any]
    client_time: datetime | None = None


@dataclass
class PushRequest:
    client_group_id: str
    client_id: str
    schema_version: int
    mutations: list[PushMutation]


@dataclass
class MutationResult:
    id: int
    status: str  # applied | merged | conflict | rejected | pending | out_of_order
    code: str | None = None
    reason: str | None = None
    replayed: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class PushResult:
    last_mutation_id: int
    results: list[MutationResult]


def _check_request(request: PushRequest) -> None:
    for name, value in (
        ("clientGroupId", request.client_group_id),
        ("clientId", request.client_id),
    ):
        if not value or len(value) > 64:
            raise invalid(name, f"无效的客户端标识 / invalid {name}")
    if len(request.mutations) > MAX_MUTATIONS_PER_PUSH:
        raise invalid(
            "mutations",
            f"一次最多推送 {MAX_MUTATIONS_PER_PUSH} 条 / at most {MAX_MUTATIONS_PER_PUSH} mutations per push",
        )
    if request.schema_version > registry.SCHEMA_VERSION:
        # A newer client than this server (during a rolling upgrade): nothing is applied
        # and nothing advances; the device keeps its queue and retries later.
        raise DomainError(
            ErrorCode.VERSION_NOT_SUPPORTED,
            f"服务器版本较旧，请稍后重试 / server speaks schema {registry.SCHEMA_VERSION}, retry later",
            field="schemaVersion",
        )
    for m in request.mutations:
        if m.id < 1:
            raise invalid("mutations.id", "变更编号必须为正整数 / mutation ids start at 1")


async def _lock_group(session: AsyncSession, actor: Actor, request: PushRequest) -> SyncClient:
    dialect = session.bind.dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(
        insert(SyncClientGroup)
        .values(id=request.client_group_id, user_id=actor.user_id, created_at=utcnow())
        .on_conflict_do_nothing()
    )
    group = (
        await session.execute(
            sa.select(SyncClientGroup)
            .where(SyncClientGroup.id == request.client_group_id)
            .with_for_update()
        )
    ).scalar_one()
    if group.user_id != actor.user_id:
        raise forbidden("该设备已由其他用户使用 / this client group belongs to another user")
    client = await session.get(SyncClient, request.client_id)
    if client is None:
        client = SyncClient(id=request.client_id, client_group_id=group.id, last_mutation_id=0)
        session.add(client)
        await session.flush()
    elif client.client_group_id != group.id:
        raise forbidden("客户端不属于该设备 / client belongs to another client group")
    return client


def _is_temporary(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.IntegrityError):
        return False
    if isinstance(exc, sa_exc.DBAPIError):
        code = getattr(getattr(exc, "orig", None), "pgcode", None) or getattr(
            getattr(exc, "orig", None), "sqlstate", None
        )
        return (
            exc.connection_invalidated
            or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
            or code in ("40001", "40P01")
        )
    return isinstance(exc, OSError | asyncio.TimeoutError | ConnectionError)


def _occurred_at(client_time: datetime | None, now: datetime) -> datetime:
    if client_time is None or client_time.tzinfo is None:
        return now
    if now - MAX_OFFLINE <= client_time <= now + MAX_CLOCK_AHEAD:
        return client_time
    return now


def _upgrade(schema_version: int, name: str, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Bring a mutation from the client's schema to the server's, or refuse it."""
    if schema_version < registry.MIN_SCHEMA_VERSION:
        raise DomainError(
            ErrorCode.VERSION_NOT_SUPPORTED,
            f"客户端版本过旧，此变更无法应用 / client schema {schema_version} is no longer supported",
        )
    for version in range(schema_version, registry.SCHEMA_VERSION):
        step = registry.UPGRADES.get((version, name))
        if step is not None:
            name, args = step.rewrite(args)
    if name not in registry.MUTATORS:
        raise DomainError(
            ErrorCode.VERSION_NOT_SUPPORTED, f"未知的变更类型 / unknown mutator: {name}"
        )
    return name, args


def _validation_error(exc: ValidationError) -> DomainError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ())) or "args"
    return invalid(f"args.{where}", f"参数无效 / invalid argument: {where}")


class _NeedsSavepoint(Exception):
    """A mutation applied without a savepoint did not succeed: its partial effects can
    only be undone by rolling back the chunk, which is then applied again with a
    savepoint from this mutation on."""

    def __init__(self, index: int) -> None:
        self.index = index


async def _apply_one(
    session: AsyncSession,
    services: Services,
    actor: Actor,
    request: PushRequest,
    m: PushMutation,
    now: datetime,
    *,
    savepoint: bool = True,
    memo: dict[Any, Any] | None = None,
    notices: list[dict[str, Any]] | None = None,
) -> MutationResult:
    if not savepoint:
        # The common case, a mutation that applies: no SAVEPOINT/RELEASE round trips. Any
        # failure (even a refusal) is left to the caller, who redoes the chunk safely.
        outcome = await _run_mutator(session, services, actor, request, m, now, memo, notices)
        return MutationResult(m.id, outcome.status, detail=outcome.as_result())
    try:
        mine: list[dict[str, Any]] | None = [] if notices is not None else None
        async with session.begin_nested():
            outcome = await _run_mutator(session, services, actor, request, m, now, memo, mine)
        if notices is not None and mine:
            notices.extend(mine)  # only once its savepoint is released: it applied
        return MutationResult(m.id, outcome.status, detail=outcome.as_result())
    except AttachmentPending as exc:
        return MutationResult(
            m.id,
            "pending",
            ErrorCode.ATTACHMENT_PENDING,
            exc.message,
            detail={"sha256": exc.sha256},
        )
    except DomainError as exc:
        return MutationResult(
            m.id,
            "rejected",
            exc.code,
            exc.message,
            detail={"field": exc.field} if exc.field else {},
        )
    except Exception as exc:
        if _is_temporary(exc):
            raise
        if isinstance(exc, sa_exc.IntegrityError):
            return MutationResult(
                m.id,
                "rejected",
                ErrorCode.CONFLICT,
                "与服务器数据冲突 / conflicts with server data",
            )
        # A bug must not block the device's queue forever: refuse this one, keep the
        # details in the server log (never in the answer: it may hold patient data).
        log.exception(
            "mutator %s failed for client %s mutation %s", m.name, request.client_id, m.id
        )
        return MutationResult(
            m.id, "rejected", ErrorCode.INTERNAL, "服务器内部错误 / internal error"
        )


async def _run_mutator(
    session: AsyncSession,
    services: Services,
    actor: Actor,
    request: PushRequest,
    m: PushMutation,
    now: datetime,
    memo: dict[Any, Any] | None,
    notices: list[dict[str, Any]] | None = None,
) -> registry.Outcome:
    name, args = _upgrade(request.schema_version, m.name, m.args)
    spec = registry.MUTATORS[name]
    try:
        parsed = spec.args.model_validate(args)
    except ValidationError as exc:
        raise _validation_error(exc) from None
    ctx = registry.MutationContext(
        session=session,
        services=services,
        actor=actor,
        now=now,
        occurred_at=_occurred_at(m.client_time, now),
        client_group_id=request.client_group_id,
        client_id=request.client_id,
        mutation_id=m.id,
        memo=memo if memo is not None else {},
    )
    outcome = await spec.apply(ctx, parsed)
    if notices is None:
        await fanout.enqueue_effects(session, outcome.effects, now=now)
    else:
        # Written with the chunk's outcome rows: only mutations that applied get here.
        notices.extend(fanout.effect_notices(outcome.effects, now=now))
    return outcome


async def _replay(session: AsyncSession, client_id: str, mutation_id: int) -> MutationResult:
    row = await session.get(SyncMutation, (client_id, mutation_id))
    if row is None:  # pruned long ago; it was applied, that is all we know
        return MutationResult(mutation_id, "applied", replayed=True)
    return MutationResult(
        mutation_id, row.status, row.code, row.reason, replayed=True, detail=row.result
    )


async def _apply_chunk(
    session: AsyncSession,
    services: Services,
    actor: Actor,
    request: PushRequest,
    chunk: list[PushMutation],
    now: datetime | None,
    *,
    safe_from: int,
    memo: dict[Any, Any],
) -> tuple[list[MutationResult], int, bool]:
    """Apply one chunk in the caller's transaction: (results, lastMutationId, stop).

    Mutations before `safe_from` run without a savepoint and raise `_NeedsSavepoint` if
    they do not apply; from `safe_from` on each runs in its own savepoint, so a refusal
    undoes only its own effects. The outcome rows and the new lastMutationId are written
    once for the chunk."""
    client = await _lock_group(session, actor, request)
    moment = now or utcnow()
    last_id = client.last_mutation_id
    results: list[MutationResult] = []
    here: dict[
        int, MutationResult
    ] = {}  # applied in this chunk, not yet written: a repeated id replays from here
    rows: list[dict[str, Any]] = []
    notices: list[
        dict[str, Any]
    ] = []  # the applied mutations' notifications, written with the rows
    stop = False
    for index, m in enumerate(chunk):
        if m.id <= last_id:
            prior = here.get(m.id)
            results.append(
                dataclasses.replace(prior, replayed=True)
                if prior
                else await _replay(session, client.id, m.id)
            )
            continue
        if m.id > last_id + 1:
            results.append(
                MutationResult(
                    m.id,
                    "out_of_order",
                    ErrorCode.OUT_OF_ORDER,
                    f"缺少变更 {last_id + 1} / expected mutation {last_id + 1} first",
                )
            )
            stop = True
            break
        if index < safe_from:
            try:
                result = await _apply_one(
                    session,
                    services,
                    actor,
                    request,
                    m,
                    moment,
                    savepoint=False,
                    memo=memo,
                    notices=notices,
                )
            except Exception as exc:
                if _is_temporary(exc):
                    raise
                raise _NeedsSavepoint(index) from exc
        else:
            result = await _apply_one(
                session,
                services,
                actor,
                request,
                m,
                moment,
                savepoint=True,
                memo=memo,
                notices=notices,
            )
        results.append(result)
        if result.status == "pending":
            stop = True
            break
        last_id = m.id
        here[m.id] = result
        rows.append(
            {
                "client_id": client.id,
                "mutation_id": m.id,
                "user_id": actor.user_id,
                "name": m.name[:60],
                "status": result.status,
                "code": result.code,
                "reason": result.reason,
                "result": result.detail,
                "client_time": m.client_time if m.client_time and m.client_time.tzinfo else None,
                "applied_at": moment,
            }
        )
    if rows:
        client.last_mutation_id = last_id
        client.updated_at = moment
        await session.execute(sa.insert(SyncMutation.__table__), rows)  # type: ignore[attr-defined]
    await fanout.enqueue_many(session, notices)
    await session.flush()
    return results, client.last_mutation_id, stop


async def push(
    services: Services, actor: Actor, request: PushRequest, *, now: datetime | None = None
) -> PushResult:
    registry.load()
    _check_request(request)
    actor = dataclasses.replace(actor, via="sync")
    results: list[MutationResult] = []
    last = 0
    pending = list(request.mutations)
    memo: dict[Any, Any] = {}
    while True:
        chunk, pending = pending[:CHUNK], pending[CHUNK:]
        # Optimistic first: no savepoints. When a mutation does not apply, the chunk's
        # transaction rolls back and the chunk runs again with a savepoint from that
        # mutation on (results are the same as with savepoints throughout).
        safe_from = len(chunk)
        while True:
            try:
                async with services.db.transaction() as session:
                    chunk_results, last, stop = await _apply_chunk(
                        session,
                        services,
                        actor,
                        request,
                        chunk,
                        now,
                        safe_from=safe_from,
                        memo=memo,
                    )
                break
            except _NeedsSavepoint as exc:
                safe_from = min(safe_from, exc.index)
            except DomainError:
                raise
            except Exception as exc:
                if _is_temporary(exc):
                    log.warning("sync push interrupted: %s", type(exc).__name__)
                    raise DomainError(
                        ErrorCode.TEMPORARILY_UNAVAILABLE,
                        "服务器暂时不可用，请稍后重试 / temporarily unavailable, retry",
                    ) from exc
                raise
        results.extend(chunk_results)
        if stop or not pending:
            break
    return PushResult(last_mutation_id=last, results=results)
