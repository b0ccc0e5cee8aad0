"""`bedside backup` / `bedside restore`: a consistent copy of the database.

PostgreSQL: `pg_dump -Fc` (custom format, compressed, restorable table by table with
`pg_restore`); the password goes through PGPASSWORD, never the command line. The
embedded SQLite database: SQLite's online backup API, consistent while the app runs.
Backup files hold patient data: they are written mode 0600.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from api.settings import Settings


class BackupError(Exception):
    pass


def _libpq(database_url: str) -> tuple[str, dict[str, str]]:
    """A libpq URI without the password, and the environment carrying it."""
    url = sa.engine.make_url(database_url)
    env = {**os.environ}
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _sqlite_path(database_url: str) -> Path:
    database = sa.engine.make_url(database_url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory database cannot be backed up")
    return Path(database)


def default_output(settings: Settings) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = "sqlite3" if settings.is_sqlite else "dump"
    return settings.data_dir / "backups" / f"bedside-{stamp}.{suffix}"


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} not found on PATH (install the PostgreSQL client tools)")
    return path


def backup(settings: Settings, output: Path) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    # Create the file private before any data goes in.
    output.touch(mode=0o600, exist_ok=True)
    output.chmod(0o600)
    if settings.is_sqlite:
        source = sqlite3.connect(_sqlite_path(settings.database_url))
        target = sqlite3.connect(output)
        try:
            with target:
                source.backup(target)
        finally:
            target.close()
            source.close()
        return output
    uri, env = _libpq(settings.database_url)
    result = subprocess.run(
        [
            _tool("pg_dump"),
            "--format=custom",
            "--no-owner",
            "--no-privileges",
            f"--file={output}",
            f"--dbname={uri}",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        output.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {result.stderr.strip()[-500:]}")
    return output


def restore(settings: Settings, source: Path) -> None:
    """Restore into the (empty) database BEDSIDE_DATABASE_URL names."""
    if not source.is_file():
        raise BackupError(f"no such backup file: {source}")
    if settings.is_sqlite:
        target_path = _sqlite_path(settings.database_url)
        if target_path.exists() and target_path.stat().st_size > 0:
            raise BackupError(f"{target_path} exists; restore into a new file")
        from api.db import private_sqlite_file

        private_sqlite_file(settings.database_url)
        src = sqlite3.connect(source)
        target = sqlite3.connect(target_path)
        try:
            with target:
                src.backup(target)
        finally:
            target.close()
            src.close()
        return
    uri, env = _libpq(settings.database_url)
    result = subprocess.run(
        [
            _tool("pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={uri}",
            str(source),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed: {result.stderr.strip()[-500:]}")
