"""What every `bedside` command shares: the group, settings, the services context and the
operator's sentence for a service that does not answer."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from api.settings import Settings, load_settings

if TYPE_CHECKING:
    from api.services import Services

# Exit codes beside 0 (done) and 1 (the command's own failure: a broken hash chain for
# `audit verify`, rows refused for `import`): 2 is a usage error (click's, or a command
# refused for its configuration), and 3 a service this command needs does not answer or
EXIT_SERVICE_UNREACHABLE = 3
EXIT_NO_SCHEMA = 3  # the database has no Bedside schema: run `bedside migrate` first
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


@click.group()
def main() -> None:
    """Bedside 床旁: surgery approvals, bedside treatments, bookings and notices."""


def _unreachable(exc: BaseException) -> str | None:
    """The operator's sentence for a database or Redis that does not answer, else None."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from sqlalchemy.exc import InterfaceError, OperationalError

    settings = load_settings()
    if isinstance(exc, RedisConnectionError):
        return (
            f"Redis 无法连接 / Redis does not answer at {_safe_url(settings.redis_url)} "
            f"(BEDSIDE_REDIS_URL): {exc}"
        )
    if isinstance(exc, OperationalError | InterfaceError | ConnectionRefusedError | TimeoutError):
        return (
            f"数据库无法连接 / the database does not answer at {_safe_url(settings.database_url)} "
            f"(BEDSIDE_DATABASE_URL): {getattr(exc, 'orig', None) or exc}"
        )
    return None


def _safe_url(url: str | None) -> str:
    from sqlalchemy.engine import make_url

    if not url:
        return "(unset)"
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a redis:// URL SQLAlchemy cannot parse
        return url.split("@")[-1]


def run(coro):  # type: ignore[no-untyped-def]
    """Run a command's coroutine; a service that does not answer ends it with exit 3."""
    try:
        return asyncio.run(coro)
    except Exception as exc:
        message = _unreachable(exc)
        if message is None:
            raise
        click.echo(message, err=True)
        sys.exit(EXIT_SERVICE_UNREACHABLE)


def _sqlite_file(settings: Settings) -> Path | None:
    from sqlalchemy.engine import make_url

    if not settings.is_sqlite:
        return None
    database = make_url(settings.database_url).database
    if not database or database == ":memory:":
        return None
    return Path(database)


def db_settings(*, schema: bool = False) -> Settings:
    """Settings for a command that opens the database; warns when the embedded default
    (a path relative to the current folder) is used outside the project folder, where it
    names a different, usually empty, database file. With `schema`, stops with
    EXIT_NO_SCHEMA, creating nothing, when the database is not migrated."""
    settings = load_settings()
    path = _sqlite_file(settings)
    if path is not None and not path.is_absolute() and Path.cwd().resolve() != PROJECT_ROOT:
        click.echo(
            f"注意：数据库路径 {path} 是相对路径，指向 {(Path.cwd() / path).resolve()}，"
            f"不在项目目录 {PROJECT_ROOT} 中；请将 BEDSIDE_DATABASE_URL 设为绝对路径。\n"
            f"warning: the database path {path} is relative and resolves to "
            f"{(Path.cwd() / path).resolve()}, outside the project folder; "
            "set BEDSIDE_DATABASE_URL to an absolute path.",
            err=True,
        )
    if schema:
        require_schema(settings)
    return settings


def require_schema(settings: Settings) -> None:
    """Stop with EXIT_NO_SCHEMA, creating nothing, when the database is not migrated."""
    import sqlalchemy as sa

    from api.db import make_engine

    where = settings.database_url
    path = _sqlite_file(settings)
    if path is not None:
        import sqlite3

        where = str(path.resolve())
        if not path.exists():
            _no_schema(where)  # connecting would create an empty file
        # Read-only, without the engine's pragmas (WAL would write to the file).
        with contextlib.closing(
            sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        ) as db:
            found = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
            ).fetchone()
        if found is None:
            _no_schema(where)
        return

    async def has_schema() -> bool:
        engine = make_engine(settings)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(lambda c: sa.inspect(c).has_table("alembic_version"))
        finally:
            await engine.dispose()

    if not run(has_schema()):
        _no_schema(where)


def _no_schema(where: str) -> None:
    click.echo(
        f"数据库中没有 Bedside 的表结构（{where}）：请检查 BEDSIDE_DATABASE_URL，"
        "或先运行 bedside migrate。\n"
        f"no Bedside schema in the database ({where}): check BEDSIDE_DATABASE_URL, "
        "or run `bedside migrate` first.",
        err=True,
    )
    sys.exit(EXIT_NO_SCHEMA)


def build_services(settings: Settings | None = None) -> Services:
    """The process's services, built once per command (settings from the environment
    unless given)."""
    from api.assembly import install_domain
    from api.services import Services

    install_domain()
    return Services.build(settings or load_settings())


@contextlib.asynccontextmanager
async def open_services(services: Services) -> AsyncIterator[Services]:
    """The command's services for the length of its coroutine; the database (and the
    platform clients, when a command used them) are closed at the end."""
    try:
        yield services
    finally:
        platforms: Any = services.extras.get("platforms")
        if platforms is not None:
            await platforms.aclose()
        await services.db.dispose()


def cli_actor():  # type: ignore[no-untyped-def]
    """The operator at the console: acts as the system, recorded as via the command line."""
    from dataclasses import replace

    from api.auth import SYSTEM_ACTOR

    return replace(SYSTEM_ACTOR, via="cli")


def configure_logging(settings: Settings) -> None:
    from api.logs import configure_logging as configure

    configure(settings.log_level, settings.log_json)
