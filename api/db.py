"""The database: one async engine per process and a session per command.

Domain functions never commit. The edge (resolver, callback, job, CLI) opens the
transaction with `async with database.transaction() as session:` and everything the
command does, its audit events and its outbox rows, commits together or not at all.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from api.settings import Settings


def private_sqlite_file(database_url: str) -> None:
    """Create the embedded database file readable by its owner only (0600), or tighten an
    existing one: it holds the patients' records. SQLite gives its -wal and -shm files the
    database file's permissions."""
    name = sa.engine.make_url(database_url).database
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    path = Path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
    path.chmod(0o600)
    for suffix in ("-wal", "-shm", "-journal"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.chmod(0o600)


def make_engine(settings: Settings) -> AsyncEngine:
    if settings.is_sqlite:
        private_sqlite_file(settings.database_url)
        engine = create_async_engine(
            settings.database_url, connect_args={"timeout": 30}, hide_parameters=True
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # WAL lets readers work beside the one writer; foreign keys are off by default.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    engine = create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=1800,
        # Parameters are patients' names and ID numbers: never in an error or a log line.
        hide_parameters=True,
    )
    event.listen(engine.sync_engine, "handle_error", _treat_protocol_confusion_as_disconnect)
    _ping_connections_left_idle(engine, settings.db_ping_after_idle_seconds)
    event.listen(engine.sync_engine, "handle_error", _hide_values_in_driver_messages)
    return engine


def _ping_connections_left_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Ping a pooled connection before use only when it sat idle for a while.

    A ping on every checkout (`pool_pre_ping`) costs a round trip per transaction. A busy
    server reuses its connections within milliseconds, and a connection used that
    recently is alive; one that sat idle may have been cut (PostgreSQL restarted, a
    firewall dropped it). That one is pinged, and a failed ping makes the pool discard it
    and check out another (SQLAlchemy's documented custom pessimistic handling). A
    connection that dies mid-use is marked a disconnect (`handle_error`), which
    invalidates every older connection of the pool at once, so a restart costs the
    requests in flight at that moment, not one failure per pooled connection.
    """
    dialect = engine.sync_engine.dialect

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _checked_in(_dbapi_connection, record):  # type: ignore[no-untyped-def]
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine.pool, "checkout")
    def _checked_out(dbapi_connection, record, _proxy):  # type: ignore[no-untyped-def]
        since = record.info.get("checked_in_at")
        if since is None or time.monotonic() - since < idle_seconds:
            return  # new, or in use a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"idle connection failed its ping: {exc}") from exc


# asyncpg names the value it could not encode: "invalid input for query argument $1:
# '3402…' (reason)". The value goes; the argument number and the reason stay.
_DRIVER_VALUE = re.compile(r"(query argument \$\d+): .*?( \([^()]*\))?\s*$", re.S)


def _scrub(message: object) -> object:
    if isinstance(message, str) and "query argument $" in message:
        return _DRIVER_VALUE.sub(
            lambda m: f"{m.group(1)}: [value hidden]{m.group(2) or ''}", message
        )
    return message


def _hide_values_in_driver_messages(context: ExceptionContext) -> None:
    """`hide_parameters` keeps the values out of SQLAlchemy's own message; the driver's
    message (and every exception chained under it, as a traceback prints them) must not
    carry them either."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [context.sqlalchemy_exception, context.original_exception]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        error.args = tuple(_scrub(a) for a in error.args)
        pending.extend([error.__cause__, error.__context__])


def _treat_protocol_confusion_as_disconnect(context: ExceptionContext) -> None:
    """asyncpg reports a connection whose server side went away mid-operation (backend
    terminated, PostgreSQL restarted) as `InternalClientError: cannot switch to state N`
    (MagicStack/asyncpg#1069) rather than as a closed connection. SQLAlchemy then returns
    it to the pool and the pre-ping does not discard it, so the error repeats on later
    checkouts. Marking it a disconnect invalidates the connection (and makes the pre-ping
    reconnect transparently)."""
    error: BaseException | None = context.original_exception
    while error is not None:
        if type(error).__name__ == "InternalClientError" or "cannot switch to state" in str(error):
            context.is_disconnect = True
            return
        error = error.__cause__


class Database:
    """The engine and the session factory, shared by everything in one process."""

    def __init__(self, settings: Settings, engine: AsyncEngine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings)
        # Domain code that needs a setting inside a command (the data dir for a generated
        # document) reads it from `session.info["settings"]`.
        self.sessionmaker = async_sessionmaker(
            self.engine, expire_on_commit=False, info={"settings": settings}
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session, session.begin():
            yield session

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for reads that span no write (queries)."""
        async with self.sessionmaker() as session:
            yield session

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    async def dispose(self) -> None:
        await self.engine.dispose()
