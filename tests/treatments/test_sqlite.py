"""The embedded default (SQLite, what `make run` serves): booking works there too."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from api.demo import seed_demo
from api.migrate import upgrade
from api.services import Services
from tests.conftest import GraphQLClient, make_settings
from tests.treatments.helpers import local_today


@pytest.mark.sqlite
async def test_patient_books_and_cancels_on_sqlite(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'bedside.db'}", tmp_path / "var")
    services = Services.build(settings)
    await upgrade(services.db.engine)
    async with services.db.transaction() as session:
        await seed_demo(session, services)
    app = create_app(settings, services=services)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t"
        ) as http:
            zhou = await GraphQLClient(http).as_user("patient.zhou")
            today = local_today()
            slots = (
                await zhou.data(
                    'query($f: Date!, $t: Date!) { availableSlots(itemCode: "PHYSIO", from: $f, to: $t) { id remaining } }',
                    {"f": today.isoformat(), "t": (today + timedelta(days=14)).isoformat()},
                )
            )["availableSlots"]
            booked = (
                await zhou.data(
                    "mutation($s: ID!) { bookAppointment(slotId: $s) { id status receipt } }",
                    {"s": slots[0]["id"]},
                )
            )["bookAppointment"]
            assert booked["status"] == "booked" and booked["receipt"]["notes"]
            cancelled = (
                await zhou.data(
                    "mutation($id: ID!) { cancelAppointment(id: $id) { status } }",
                    {"id": booked["id"]},
                )
            )["cancelAppointment"]
            assert cancelled["status"] == "cancelled"
            orders = (await zhou.data("{ myOrders { remainingSessions paymentStatus } }"))[
                "myOrders"
            ]
            assert orders == [{"remainingSessions": 10, "paymentStatus": "PAID"}]
            sun = await GraphQLClient(http).as_user("pt.sun")
            quiet_day = (await sun.data('query { myWorklist(date: "2026-01-05") { id } }'))[
                "myWorklist"
            ]
            assert quiet_day == []
    finally:
        await services.db.dispose()
