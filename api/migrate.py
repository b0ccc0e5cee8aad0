"""Upgrade the database to the newest schema (all Alembic heads)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


async def upgrade(engine: AsyncEngine, revision: str = "heads") -> None:
    cfg = alembic_config()

    def run(sync_connection) -> None:  # type: ignore[no-untyped-def]
        cfg.attributes["connection"] = sync_connection
        command.upgrade(cfg, revision)

    async with engine.begin() as connection:
        await connection.run_sync(run)


async def autogenerate(
    engine: AsyncEngine,
    message: str,
    *,
    rev_id: str | None = None,
    head: str = "head",
    branch_label: str | None = None,
    depends_on: str | None = None,
) -> None:
    """Developer helper: write a migration for the difference between models and database."""
    cfg = alembic_config()

    def run(sync_connection) -> None:  # type: ignore[no-untyped-def]
        cfg.attributes["connection"] = sync_connection
        command.revision(
            cfg,
            message=message,
            autogenerate=True,
            rev_id=rev_id,
            head=head,
            branch_label=branch_label,
            depends_on=depends_on,
        )

    async with engine.begin() as connection:
        await connection.run_sync(run)
