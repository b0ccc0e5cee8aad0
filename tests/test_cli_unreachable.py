"""A service that does not answer is a sentence and exit code 3, not a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.security.live import free_port

BEDSIDE = str(Path(sys.executable).with_name("bedside"))


def _bedside(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BEDSIDE, *args],
        env={**os.environ, "BEDSIDE_DATA_DIR": str(tmp_path), **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unreachable_database(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql+asyncpg://postgres:s3cret@127.0.0.1:{port}/bedside"
    result = _bedside(tmp_path, "migrate", BEDSIDE_DATABASE_URL=url)
    assert result.returncode == 3, result.stderr
    assert "数据库无法连接" in result.stderr and f"127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr and "s3cret" not in result.stderr


def test_unreachable_redis(tmp_path: Path) -> None:
    port = free_port()
    result = _bedside(
        tmp_path,
        "worker",
        BEDSIDE_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'b.db'}",
        BEDSIDE_REDIS_URL=f"redis://127.0.0.1:{port}/0",
    )
    assert result.returncode == 3, result.stderr
    assert "Redis 无法连接" in result.stderr and "BEDSIDE_REDIS_URL" in result.stderr
    assert "Traceback" not in result.stderr
