"""The embedded default (SQLite): a surgery approved end to end and its metrics."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from tests.conftest import GraphQLClient, make_settings
from tests.surgery.helpers import INSTANCE, SUBMIT, application, approve

SECRET = "test-secret-key-0123456789abcdef0123456789"  # the same as make_settings
METRICS = "query($s: DateTime!, $u: DateTime!) { approvalMetrics(since: $s, until: $u) { submitted decided completedWithin24hRate medianHoursToDecision overdueCount } }"


async def _bedside(*args: str, env: dict[str, str]) -> int:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "api.cli", *args, env=env, stdout=asyncio.subprocess.DEVNULL
    )
    return await proc.wait()


@pytest.mark.sqlite
async def test_surgery_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bedside.db'}"
    env = {
        **os.environ,
        "BEDSIDE_DATABASE_URL": url,
        "BEDSIDE_DATA_DIR": str(tmp_path / "var"),
        "BEDSIDE_ARGON2_MEMORY_COST_KIB": "1024",
        "BEDSIDE_ARGON2_TIME_COST": "1",
        "BEDSIDE_SECRET_KEY": SECRET,
    }
    assert await _bedside("migrate", env=env) == 0
    assert await _bedside("seed-demo", env=env) == 0
    app = create_app(make_settings(url, tmp_path / "var", secret_key=SECRET))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as http:
            gql = GraphQLClient(http)
            li = await gql.as_user("dr.li")
            patients = (await li.data("{ patients { id mrn } }"))["patients"]
            pid = next(p["id"] for p in patients if p["mrn"] == "P0002")
            inst = (await li.data(SUBMIT, {"i": application(pid, "86.3")}))[
                "submitSurgeryApplication"
            ]
            await approve(await gql.as_user("chief.wang"), inst["id"])
            done = (await li.data(INSTANCE, {"id": inst["id"]}))["approvalInstance"]
            assert (
                done["status"] == "approved" and done["history"][-1]["action"] == "notice_generated"
            )
            now = datetime.now(UTC)
            period = {
                "s": (now - timedelta(hours=1)).isoformat(),
                "u": (now + timedelta(hours=1)).isoformat(),
            }
            m = (await (await gql.as_user("ma.zhao")).data(METRICS, period))["approvalMetrics"]
            assert (
                m["submitted"] == 1
                and m["decided"] == 1
                and m["completedWithin24hRate"] == 1.0
                and m["overdueCount"] == 0
            )
            assert m["medianHoursToDecision"] < 1
    finally:
        await app.state.services.db.dispose()
    assert await _bedside("audit", "verify", env=env) == 0
