"""Test fixtures: a real PostgreSQL (or the embedded SQLite), real Redis, the real app.

PostgreSQL is used when BEDSIDE_TEST_DATABASE_URL is set or a server answers on
127.0.0.1:5432; each pytest run migrates its own fresh database and every test starts
from empty tables. With BEDSIDE_TEST_REQUIRE_SERVICES=1 (CI) a missing PostgreSQL or
Redis fails the run instead of falling back or skipping.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from api.app import create_app
from api.assembly import install_domain
from api.db import Database
from api.demo import seed_demo
from api.migrate import upgrade
from api.services import Services
from api.settings import Settings

# The test process assembles the domain as every process does (hooks, guards, chains).
install_domain()

REQUIRE_SERVICES = os.environ.get("BEDSIDE_TEST_REQUIRE_SERVICES") == "1"
ADMIN_PG_URL = os.environ.get(
    "BEDSIDE_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
DEMO_PASSWORD = "bedside-demo"


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _postgres_available() -> bool:
    url = sa.engine.make_url(ADMIN_PG_URL)
    return _port_open(url.host or "127.0.0.1", url.port or 5432)


def redis_test_url() -> str | None:
    url = os.environ.get(
        "BEDSIDE_TEST_REDIS_URL",
        f"redis://127.0.0.1:6379/{os.environ.get('BEDSIDE_TEST_REDIS_DB', '1')}",
    )
    if _port_open("127.0.0.1", 6379) or "BEDSIDE_TEST_REDIS_URL" in os.environ:
        return url
    if REQUIRE_SERVICES:
        pytest.fail(
            "Redis is required (BEDSIDE_TEST_REQUIRE_SERVICES=1) but does not answer on 127.0.0.1:6379"
        )
    return None


@pytest.fixture(scope="session")
def tmp_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bedside-data")


@pytest.fixture(scope="session")
async def database_url(tmp_data_dir: Path) -> AsyncIterator[str]:
    if not _postgres_available():
        if REQUIRE_SERVICES:
            pytest.fail(
                f"PostgreSQL is required (BEDSIDE_TEST_REQUIRE_SERVICES=1) but {ADMIN_PG_URL} does not answer"
            )
        url = f"sqlite+aiosqlite:///{tmp_data_dir / 'bedside-test.db'}"
        yield url
        return
    name = f"bedside_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_async_engine(ADMIN_PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(ADMIN_PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "secret_key": "test-secret-key-0123456789abcdef0123456789",
        "data_dir": data_dir,
        "argon2_time_cost": 1,
        "argon2_memory_cost_kib": 1024,
        "argon2_parallelism": 1,
        "log_json": False,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def settings(database_url: str, tmp_data_dir: Path) -> Settings:
    return make_settings(database_url, tmp_data_dir)


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings)
    await upgrade(db.engine)
    yield db
    await db.dispose()


async def truncate_all(db: Database) -> None:
    """Empty every table. Taking all the locks can deadlock with a straggler from the
    previous test (a listener's or server's transaction still running); PostgreSQL then
    aborts one side, and trying again after it finishes succeeds."""
    for attempt in range(5):
        try:
            await _clear_tables(db)
            return
        except sa.exc.DBAPIError as exc:
            if "deadlock detected" not in str(exc) or attempt == 4:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))


async def _clear_tables(db: Database) -> None:
    async with db.engine.begin() as conn:
        if db.is_postgres:
            tables = (
                (
                    await conn.execute(
                        sa.text(
                            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                        )
                    )
                )
                .scalars()
                .all()
            )
            # DELETE is far quicker than TRUNCATE on tables this small; replica mode skips
            # triggers and foreign-key checks, so the order does not matter. The lock waits
            # for anything still writing (a live server's request from the last test), so
            # no row survives the DELETE to collide with the reset sequences.
            await conn.execute(
                sa.text(
                    "LOCK TABLE "
                    + ", ".join(f'"{t}"' for t in tables)
                    + " IN ACCESS EXCLUSIVE MODE"
                )
            )
            await conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            for table in tables:
                await conn.execute(sa.text(f'DELETE FROM "{table}"'))
            await conn.execute(
                sa.text(
                    "SELECT setval(format('%I', sequencename)::regclass, 1, false) FROM pg_sequences WHERE schemaname = 'public'"
                )
            )
        else:
            tables = (
                (
                    await conn.execute(
                        sa.text(
                            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT IN ('alembic_version') AND name NOT LIKE 'sqlite_%'"
                        )
                    )
                )
                .scalars()
                .all()
            )
            await conn.execute(sa.text("PRAGMA foreign_keys=OFF"))
            for t in tables:
                await conn.execute(sa.text(f'DELETE FROM "{t}"'))
            await conn.execute(sa.text("PRAGMA foreign_keys=ON"))


@pytest.fixture
async def services(settings: Settings, database: Database) -> Services:
    """Services over empty tables."""
    await truncate_all(database)
    return Services.build(settings, db=database)


class DemoSnapshot:
    """The demo hospital, seeded once per run through the real `seed_demo`, then copied
    back into the empty tables before each test that wants it.

    Seeding runs hundreds of domain calls (slots for 14 days, definitions, privileges …);
    copying the resulting rows back takes a few milliseconds. Triggers and foreign keys
    are paused during the copy (`session_replication_role = replica`), so the copy does
    not produce change-log rows the seed did not produce.
    """

    def __init__(self) -> None:
        self.tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        self.sequences: dict[str, int] = {}

    async def take(self, db: Database) -> None:
        async with db.engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            tables = [
                r["tablename"]
                for r in await raw.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                )
            ]
            for table in tables:
                statement = await raw.prepare(f'SELECT * FROM "{table}"')
                rows = await statement.fetch()
                if not rows:
                    continue
                # The driver decodes JSON into Python values but encodes only text: keep
                # JSON columns as their JSON text for the copy back.
                is_json = [a.type.name in ("json", "jsonb") for a in statement.get_attributes()]
                records = [
                    tuple(
                        json.dumps(v) if j and v is not None else v
                        for v, j in zip(r.values(), is_json, strict=True)
                    )
                    for r in rows
                ]
                self.tables[table] = (list(rows[0].keys()), records)
            for r in await raw.fetch(
                "SELECT schemaname, sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'"
            ):
                if r["last_value"] is not None:
                    self.sequences[r["sequencename"]] = r["last_value"]

    async def restore(self, db: Database) -> None:
        async with db.engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            async with raw.transaction():
                await raw.execute("SET LOCAL session_replication_role = replica")
                for table, (columns, records) in self.tables.items():
                    await raw.copy_records_to_table(table, records=records, columns=columns)
                for sequence, value in self.sequences.items():
                    await raw.execute(f"SELECT setval('\"{sequence}\"', {int(value)})")


_demo_snapshot: DemoSnapshot | None = None


@pytest.fixture
async def demo(services: Services) -> Services:
    """Services with the demo hospital loaded."""
    global _demo_snapshot
    if not services.db.is_postgres:
        async with services.db.transaction() as session:
            await seed_demo(session, services)
        return services
    if _demo_snapshot is None:
        async with services.db.transaction() as session:
            await seed_demo(session, services)
        snapshot = DemoSnapshot()
        await snapshot.take(services.db)
        _demo_snapshot = snapshot
    else:
        await _demo_snapshot.restore(services.db)
    return services


class GraphQLClient:
    """Talks to /graphql over HTTP, as the PWA does."""

    def __init__(self, http: httpx.AsyncClient, token: str | None = None) -> None:
        self.http = http
        self.token = token

    async def execute(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        headers = {}
        bearer = token or self.token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Execute and insist on no errors."""
        body = await self.execute(query, variables)
        assert not body.get("errors"), body["errors"]
        return body["data"]

    async def error(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """Execute and return the first error (insisting there is one)."""
        body = await self.execute(query, variables)
        assert body.get("errors"), f"expected an error, got {body}"
        return body["errors"][0]

    async def as_user(self, username: str, password: str = DEMO_PASSWORD) -> GraphQLClient:
        body = await self.execute(
            "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }",
            {"u": username, "p": password},
        )
        assert not body.get("errors"), body
        return GraphQLClient(self.http, body["data"]["login"]["token"])


def error_code(error: dict[str, Any]) -> str | None:
    return (error.get("extensions") or {}).get("code")


@pytest.fixture
async def app(services: Services):  # type: ignore[no-untyped-def]
    return create_app(services.settings, services=services)


@pytest.fixture
async def http(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
async def gql(http: httpx.AsyncClient, demo: Services) -> GraphQLClient:
    """An anonymous GraphQL client over the demo hospital; `await gql.as_user('dr.li')`."""
    return GraphQLClient(http)
