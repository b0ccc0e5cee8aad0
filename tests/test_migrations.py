"""The migrations build exactly the schema the models describe (a model change without its
migration, or a migration without its model change, fails here)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import api.models  # noqa: F401 - registers every table on the metadata
from api.db import Database


async def test_migrated_database_matches_the_models(database: Database) -> None:
    def differences(connection):  # type: ignore[no-untyped-def]
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, SQLModel.metadata)

    async with database.engine.connect() as conn:
        diff = await conn.run_sync(differences)
    assert diff == [], "write a migration: .venv/bin/python tools/makemigration.py ..."
