"""The named bedside actions that offline sync replays: idempotent, versioned, and the
`treatments sweep` command."""

from __future__ import annotations

import os
import subprocess
import sys

import sqlalchemy as sa

from api.auth import Actor
from api.domain.treatments.actions import BEDSIDE_ACTIONS
from api.errors import DomainError
from api.models.people import User
from api.models.treatments import TreatmentRecord
from api.services import Services
from tests.conftest import GraphQLClient
from tests.treatments.helpers import count, make_order


async def _actor(services: Services, username: str) -> Actor:
    async with services.db.session() as session:
        return Actor.from_user(
            (await session.execute(sa.select(User).where(User.username == username))).scalar_one(),
            via="sync",
        )


async def test_replayed_actions_return_the_first_result_and_versions_move(
    gql: GraphQLClient, demo: Services
) -> None:
    sun = await gql.as_user("pt.sun")
    order_id = await make_order(demo, "P0005")
    walk_in = (
        await sun.data(
            "mutation($o: ID!) { registerWalkIn(orderId: $o) { id } }", {"o": str(order_id)}
        )
    )["registerWalkIn"]
    actor = await _actor(demo, "pt.sun")
    results = []
    for _ in range(2):
        async with demo.db.transaction() as session:
            results.append(
                await BEDSIDE_ACTIONS["startTreatment"](
                    session,
                    {"appointmentId": walk_in["id"]},
                    actor=actor,
                    idempotency_key="pad-1:7",
                )
            )
    assert results[0] == results[1] and await count(demo, TreatmentRecord) == 1
    record_id = results[0]["recordId"]
    async with demo.db.transaction() as session:
        saved = await BEDSIDE_ACTIONS["saveTreatmentRecord"](
            session,
            {
                "recordId": record_id,
                "data": {"minutes": 10},
                "expectedVersion": results[0]["version"],
            },
            actor=actor,
            idempotency_key="pad-1:8",
        )
    assert saved["version"] == results[0]["version"] + 1
    try:
        async with demo.db.transaction() as session:
            await BEDSIDE_ACTIONS["saveTreatmentRecord"](
                session,
                {
                    "recordId": record_id,
                    "data": {"minutes": 12},
                    "expectedVersion": results[0]["version"],
                },
                actor=actor,
            )
    except DomainError as exc:
        assert exc.code == "STALE_VERSION" and exc.details["currentVersion"] == saved["version"]
    else:
        raise AssertionError("a stale edit was applied")
    # Another department's staff get the same NOT_FOUND the GraphQL path gives ("not
    # yours" answers as "not there").
    li = await _actor(demo, "dr.li")
    try:
        async with demo.db.transaction() as session:
            await BEDSIDE_ACTIONS["saveTreatmentRecord"](
                session, {"recordId": record_id, "data": {}}, actor=li
            )
    except DomainError as exc:
        assert exc.code == "NOT_FOUND"
    else:
        raise AssertionError("a surgeon edited a treatment record")


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
