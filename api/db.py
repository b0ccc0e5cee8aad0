"""The database: one async engine per process and a session per command.

Domain functions never commit. The edge (resolver, callback, job, CLI) opens the
transaction with `async with database.transaction() as session:` and everything the
command does, its audit events and its outbox rows, commits together or not at all.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import ExceptionContext
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
        engine = create_async_engine(settings.database_url, connect_args={"timeout": 30})

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
        pool_pre_ping=True,  # a restarted PostgreSQL costs one failed checkout, not an outage
        pool_recycle=1800,
    )
    event.listen(engine.sync_engine, "handle_error", _treat_protocol_confusion_as_disconnect)
    return engine


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
