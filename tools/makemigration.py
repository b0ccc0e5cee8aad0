"""Write an Alembic migration for what the models have and the migrations lack.

    .venv/bin/python tools/makemigration.py "treatments" --rev-id t001 --down 0001

Migrates a scratch PostgreSQL database to every head, compares it with the models and
writes api/migrations/versions/<rev-id>_<message>.py. Read the file before committing.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid

import sqlalchemy as sa
from alembic import command
from sqlalchemy.ext.asyncio import create_async_engine

from api.migrate import alembic_config, upgrade

ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("message")
    parser.add_argument("--rev-id", required=True)
    parser.add_argument("--down", help="the revision this one follows (default: the single head)")
    args = parser.parse_args()
    name = f"bedside_makemigration_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(ADMIN, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine = create_async_engine(sa.engine.make_url(ADMIN).set(database=name))
    try:
        await upgrade(engine)
        cfg = alembic_config()

        def run(sync_connection) -> None:  # type: ignore[no-untyped-def]
            cfg.attributes["connection"] = sync_connection
            command.revision(
                cfg,
                message=args.message,
                autogenerate=True,
                rev_id=args.rev_id,
                head=args.down or "head",
            )

        async with engine.begin() as conn:
            await conn.run_sync(run)
    finally:
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
