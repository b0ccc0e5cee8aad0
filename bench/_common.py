"""Shared by the benchmarks: a scratch PostgreSQL database, migrated, and bulk fixtures."""

from __future__ import annotations

import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ADMIN = os.environ.get(
    "BEDSIDE_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


@contextlib.asynccontextmanager
async def scratch_database(prefix: str) -> AsyncIterator[str]:
    from api.migrate import upgrade

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(ADMIN, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(ADMIN).set(database=name).render_as_string(hide_password=False)
    engine = create_async_engine(url)
    try:
        await upgrade(engine)
        await engine.dispose()
        yield url
    finally:
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def insert_users(conn: sa.ext.asyncio.AsyncConnection, count: int) -> None:
    await conn.execute(
        sa.text(
            """INSERT INTO "user" (username, display_name, roles, is_active, token_version, failed_logins, created_at)
               SELECT 'u' || g, '用户' || g, '["surgeon"]'::jsonb, true, 0, 0, now() FROM generate_series(1, :n) g"""
        ),
        {"n": count},
    )
