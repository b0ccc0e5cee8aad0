"""The embedded default (SQLite, what `make run` serves): booking works there too."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from tests.conftest import GraphQLClient, make_settings
from tests.treatments.helpers import local_today


@pytest.mark.sqlite
async def test_patient_books_and_cancels_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bedside.db'}"
    env = {**os.environ, "BEDSIDE_DATABASE_URL": url, "BEDSIDE_DATA_DIR": str(tmp_path / "var"),
           "BEDSIDE_ARGON2_MEMORY_COST_KIB": "1024", "BEDSIDE_ARGON2_TIME_COST": "1"}
    for command in (["migrate"], ["seed-demo"], ["treatments", "sweep"]):
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "api.cli", *command], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
    app = create_app(make_settings(url, tmp_path / "var", secret_key=None))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            zhou = await GraphQLClient(http).as_user("patient.zhou")
            today = local_today()
            slots = (await zhou.data(
                "query($f: Date!, $t: Date!) { availableSlots(itemCode: \"PHYSIO\", from: $f, to: $t) { id remaining } }",
                {"f": today.isoformat(), "t": (today + timedelta(days=14)).isoformat()},
            ))["availableSlots"]
            booked = (await zhou.data("mutation($s: ID!) { bookAppointment(slotId: $s) { id status receipt } }", {"s": slots[0]["id"]}))["bookAppointment"]
            assert booked["status"] == "booked" and booked["receipt"]["notes"]
            cancelled = (await zhou.data("mutation($id: ID!) { cancelAppointment(id: $id) { status } }", {"id": booked["id"]}))["cancelAppointment"]
            assert cancelled["status"] == "cancelled"
            orders = (await zhou.data("{ myOrders { remainingSessions paymentStatus } }"))["myOrders"]
            assert orders == [{"remainingSessions": 10, "paymentStatus": "PAID"}]
    finally:
        await app.state.services.db.dispose()
