"""The `treatments sweep` command and the order history's hash chain. (Replays of the
bedside actions are proven through the sync protocol itself: tests/sync.)"""

from __future__ import annotations

import os
import subprocess
import sys

import sqlalchemy as sa

from api.auth import Actor
from api.models.people import User
from api.services import Services
from tests.conftest import GraphQLClient
from tests.treatments.helpers import make_order


async def _actor(services: Services, username: str) -> Actor:
    async with services.db.session() as session:
        return Actor.from_user(
            (await session.execute(sa.select(User).where(User.username == username))).scalar_one(),
            via="sync",
        )


async def test_sweep_command_generates_slots_and_is_repeatable(demo: Services) -> None:
    import asyncio

    env = {
        **os.environ,
        "BEDSIDE_DATABASE_URL": demo.settings.database_url,
        "BEDSIDE_SECRET_KEY": "x" * 40,
    }
    first = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "api.cli", "treatments", "sweep"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode == 0, first.stderr
    assert "slots created: 0" in first.stdout  # the demo already generated the window


async def test_order_history_is_hash_chained_and_a_deleted_chain_is_found(
    gql: GraphQLClient, demo: Services
) -> None:
    import asyncio

    from api.models.audit import AuditEvent, AuditStream

    sun = await gql.as_user("pt.sun")
    order_id = await make_order(demo, "P0005", paid=False)
    await sun.data(
        "mutation($o: ID!) { setOrderPaymentStatus(orderId: $o, status: PAID) { paymentStatus } }",
        {"o": str(order_id)},
    )
    env = {
        **os.environ,
        "BEDSIDE_DATABASE_URL": demo.settings.database_url,
        "BEDSIDE_SECRET_KEY": "x" * 40,
    }
    verify = [sys.executable, "-m", "api.cli", "audit", "verify"]
    intact = await asyncio.to_thread(
        subprocess.run, verify, env=env, capture_output=True, text=True, timeout=120
    )
    assert intact.returncode == 0, intact.stderr
    async with demo.db.session() as session:
        actions = (
            (
                await session.execute(
                    sa.select(AuditEvent.action)
                    .where(AuditEvent.stream == f"treatment_order:{order_id}")
                    .order_by(AuditEvent.seq)
                )
            )
            .scalars()
            .all()
        )
    assert actions == ["created", "payment_status"]
    async with demo.db.transaction() as session:
        await session.execute(
            sa.delete(AuditEvent).where(AuditEvent.stream == f"treatment_order:{order_id}")
        )
        await session.execute(
            sa.delete(AuditStream).where(AuditStream.stream == f"treatment_order:{order_id}")
        )
    broken = await asyncio.to_thread(
        subprocess.run, verify, env=env, capture_output=True, text=True, timeout=120
    )
    assert broken.returncode == 1 and f"treatment_order:{order_id}" in broken.stderr
