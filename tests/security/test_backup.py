"""Backup and the restore drill: restore into a new database, the hash chains verify."""

from __future__ import annotations

import stat
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from api.demo import seed_demo
from api.migrate import upgrade
from api.services import Services
from tests.conftest import ADMIN_PG_URL, make_settings
from tests.security.test_patient_data import _run_cli

TABLES = ("user", "patient", "audit_event", "audit_stream", "approval_instance", "notice")


async def _counts(url: str) -> dict[str, int]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return {
                t: (await conn.execute(sa.text(f'SELECT count(*) FROM "{t}"'))).scalar_one()
                for t in TABLES
            }
    finally:
        await engine.dispose()


async def test_backup_and_restore_drill_postgres(demo: Services, tmp_path: Path) -> None:
    if not demo.db.is_postgres:
        return
    source_url = demo.settings.database_url
    before = await _counts(source_url)
    assert before["audit_event"] > 0 and before["patient"] > 0  # something to lose

    dump = tmp_path / "drill.dump"
    code, out = await _run_cli(demo, "backup", "--output", str(dump))
    assert code == 0, out
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600  # patient data: private
    assert dump.read_bytes()[:5] == b"PGDMP"  # pg_dump custom format

    name = f"bedside_restore_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(ADMIN_PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    restored_url = (
        sa.engine.make_url(source_url).set(database=name).render_as_string(hide_password=False)
    )
    try:
        code, out = await _run_cli(demo, "restore", str(dump), BEDSIDE_DATABASE_URL=restored_url)
        assert code == 0, out
        assert await _counts(restored_url) == before
        code, out = await _run_cli(demo, "audit", "verify", BEDSIDE_DATABASE_URL=restored_url)
        assert code == 0, out
        assert "intact" in out
        # Restoring over a database that already has data is refused, nothing half-restored.
        code, out = await _run_cli(demo, "restore", str(dump), BEDSIDE_DATABASE_URL=restored_url)
        assert code == 1 and "restore failed" in out
        assert await _counts(restored_url) == before
        # The drill proves the check can fail too: break one event in the restored copy.
        engine = create_async_engine(restored_url)
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    "UPDATE audit_event SET data = '{\"tampered\": true}' WHERE id = (SELECT min(id) FROM audit_event)"
                )
            )
        await engine.dispose()
        code, out = await _run_cli(demo, "audit", "verify", BEDSIDE_DATABASE_URL=restored_url)
        assert code == 1 and "BROKEN" in out
    finally:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def test_backup_and_restore_embedded_sqlite(demo: Services, tmp_path: Path) -> None:
    source = f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
    embedded = Services.build(make_settings(source, tmp_path))
    await upgrade(embedded.db.engine)
    async with embedded.db.transaction() as session:
        await seed_demo(session, embedded)
    await embedded.db.dispose()
    before = await _counts(source)
    copy = tmp_path / "backup.sqlite3"
    code, out = await _run_cli(demo, "backup", "--output", str(copy), BEDSIDE_DATABASE_URL=source)
    assert code == 0, out
    restored = f"sqlite+aiosqlite:///{tmp_path / 'restored.db'}"
    code, out = await _run_cli(demo, "restore", str(copy), BEDSIDE_DATABASE_URL=restored)
    assert code == 0, out
    assert await _counts(restored) == before
    code, out = await _run_cli(demo, "audit", "verify", BEDSIDE_DATABASE_URL=restored)
    assert code == 0, out
