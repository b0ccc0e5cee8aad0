"""The embedded default: SQLite, no services. The CLI path that `make run` takes."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx

from api.app import create_app
from tests.conftest import GraphQLClient, make_settings


def _bedside(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_migrate_seed_twice_and_login_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bedside.db'}"
    env = {
        **os.environ,
        "BEDSIDE_DATABASE_URL": url,
        "BEDSIDE_DATA_DIR": str(tmp_path / "var"),
        "BEDSIDE_ARGON2_MEMORY_COST_KIB": "1024",
        "BEDSIDE_ARGON2_TIME_COST": "1",
    }
    umask = os.umask(0o022)  # a usual umask: new files would be world-readable
    try:
        assert _bedside("migrate", env=env).returncode == 0
    finally:
        os.umask(umask)
    # The embedded database holds the patients' records: readable by its owner only.
    assert stat.S_IMODE((tmp_path / "bedside.db").stat().st_mode) == 0o600
    first = _bedside("seed-demo", env=env)
    assert first.returncode == 0, first.stderr
    second = _bedside("seed-demo", env=env)
    assert second.returncode == 0, second.stderr
    assert "people.users created: 0" in second.stdout  # idempotent: nothing new the second time

    settings = make_settings(url, tmp_path / "var", secret_key=None)
    app = create_app(settings)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        health = await http.get("/readyz")
        assert health.status_code == 200 and health.json()["checks"]["database"] == "ok"
        client = await GraphQLClient(http).as_user("chief.wang")
        me = await client.data("{ me { username department { name } } }")
        assert me["me"] == {"username": "chief.wang", "department": {"name": "普外科"}}
    await app.state.services.db.dispose()
    assert _bedside("audit", "verify", env=env).returncode == 0
