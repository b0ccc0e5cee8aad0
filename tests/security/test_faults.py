"""Faults: PostgreSQL restarted under load, Redis down, the attachment disk full.

PostgreSQL and Redis here are private servers (bench/_local.py) on their own ports, so
restarting or stopping them disturbs nothing else on the machine.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from arq.constants import health_check_key_suffix
from sqlalchemy.ext.asyncio import create_async_engine

from api.demo import seed_demo
from api.migrate import upgrade
from api.services import Services
from bench._local import local_postgres, local_redis
from bench.fleet import prepare
from tests.conftest import DEMO_PASSWORD, make_settings
from tests.security.live import api_process, env_for

LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }"
SLOTS = 'query($f: Date!, $t: Date!) { availableSlots(itemCode: "PHYSIO", from: $f, to: $t) { id remaining } }'
REFUSALS = {"CONFLICT", "FULLY_BOOKED", "NO_SESSIONS_LEFT"}
BOOK = "mutation($s: ID!, $o: ID, $k: String) { bookAppointment(slotId: $s, orderId: $o, idempotencyKey: $k) { id } }"


async def _fleet_database(url: str, data_dir: Path) -> tuple[Services, dict[str, Any]]:
    services = Services.build(make_settings(url, data_dir))
    await upgrade(services.db.engine)
    async with services.db.transaction() as session:
        await seed_demo(session, services)
    data = await prepare(url, therapists=1, patients=8)
    return services, data


async def _token(http: httpx.AsyncClient, username: str) -> str:
    body = (
        await http.post(
            "/graphql", json={"query": LOGIN, "variables": {"u": username, "p": DEMO_PASSWORD}}
        )
    ).json()
    return str(body["data"]["login"]["token"])


@pytest.fixture
def tiny_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    mount = tmp_path / "tiny"
    mount.mkdir()
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("cannot mount a small tmpfs here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_postgres_restart_under_load(tmp_path: Path) -> None:
    with local_postgres() as pg:
        url = pg.url_for("postgres")
        services, data = await _fleet_database(url, tmp_path)
        async with services.db.session() as session:  # the prepared worklists, before any booking
            prepared = set((await session.execute(sa.text("SELECT id FROM appointment"))).scalars())
        with api_process(services.settings, log=tmp_path / "api.log") as base:
            async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                patients = []
                for username, order_id, patient_id in data["patients"]:
                    patients.append((await _token(http, username), order_id, patient_id))
                day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 2 * 86400))
                outcomes: dict[str, list[str]] = {"ok": [], "unavailable": [], "other": []}
                acknowledged: dict[
                    str, tuple[str, int]
                ] = {}  # idempotency key -> (appointment, patient)
                unanswered: list[
                    tuple[str, str, str, int]
                ] = []  # (key, token, slot, order) to retry
                stop = asyncio.Event()

                async def patient_loop(token: str, order_id: int, patient_id: int) -> None:
                    headers = {"authorization": f"Bearer {token}"}
                    while not stop.is_set():
                        key = uuid.uuid4().hex
                        try:
                            listing = await http.post(
                                "/graphql",
                                json={"query": SLOTS, "variables": {"f": day, "t": day}},
                                headers=headers,
                            )
                            slots = listing.json()
                            if listing.status_code == 503 or (
                                slots.get("errors")
                                and slots["errors"][0]["extensions"]["code"]
                                == "TEMPORARILY_UNAVAILABLE"
                            ):
                                outcomes["unavailable"].append("slots")
                                await asyncio.sleep(0.05)
                                continue
                            free = [
                                s
                                for s in (slots.get("data") or {}).get("availableSlots") or []
                                if s["remaining"] > 0
                            ]
                            if not free:
                                outcomes["unavailable"].append("slots")
                                await asyncio.sleep(0.05)
                                continue
                            slot = free[key.__hash__() % len(free)]["id"]
                            response = await http.post(
                                "/graphql",
                                json={
                                    "query": BOOK,
                                    "variables": {"s": slot, "o": str(order_id), "k": key},
                                },
                                headers=headers,
                            )
                        except (
                            httpx.HTTPError
                        ) as exc:  # a dropped connection would be a failure to fail cleanly
                            outcomes["other"].append(f"transport {type(exc).__name__}")
                            continue
                        body = response.json()
                        if response.status_code == 200 and not body.get("errors"):
                            acknowledged[key] = (body["data"]["bookAppointment"]["id"], patient_id)
                            outcomes["ok"].append(key)
                        elif (
                            response.status_code in (200, 503)
                            and body["errors"][0]["extensions"]["code"] == "TEMPORARILY_UNAVAILABLE"
                        ):
                            outcomes["unavailable"].append(key)
                            unanswered.append((key, token, slot, order_id))
                        elif (
                            response.status_code == 200
                            and body["errors"][0]["extensions"]["code"] in REFUSALS
                        ):
                            # A rule said no (this patient already holds the slot it drew, or
                            # the last seat went to someone else): a clean answer, not a fault.
                            outcomes["unavailable"].append(key)
                        else:
                            outcomes["other"].append(f"{response.status_code} {body.get('errors')}")

                workers = [asyncio.create_task(patient_loop(*p)) for p in patients]
                while len(outcomes["ok"]) < 5:  # under load before the restart  # noqa: ASYNC110 - polling a server's state
                    await asyncio.sleep(0.2)
                before_restart = len(outcomes["ok"])
                await asyncio.to_thread(pg.restart)
                restarted_at = len(outcomes["ok"])
                recovery = time.monotonic() + 30
                while len(outcomes["ok"]) < restarted_at + 5 and time.monotonic() < recovery:  # noqa: ASYNC110 - polling a server's state
                    await asyncio.sleep(0.2)
                stop.set()
                await asyncio.gather(*workers)

                assert before_restart >= 5, outcomes
                assert len(outcomes["ok"]) >= restarted_at + 5, (
                    "the API did not recover after the restart"
                )
                assert outcomes["other"] == [], outcomes["other"][:5]
                # The client retries what went unanswered with the same key: booked once.
                for key, token, slot, order_id in unanswered:
                    response = await http.post(
                        "/graphql",
                        json={
                            "query": BOOK,
                            "variables": {"s": slot, "o": str(order_id), "k": key},
                        },
                        headers={"authorization": f"Bearer {token}"},
                    )
                    body = response.json()
                    if not body.get("errors"):
                        acknowledged[key] = (body["data"]["bookAppointment"]["id"], 0)
                health = await http.get("/readyz")
                assert health.status_code == 200

        engine = create_async_engine(url)
        async with engine.connect() as conn:
            rows = dict(
                (
                    await conn.execute(
                        sa.text(
                            "SELECT id, patient_id FROM appointment WHERE NOT (id = ANY(:prepared))"
                        ),
                        {"prepared": list(prepared)},
                    )
                ).all()
            )
            for appointment_id, patient_id in acknowledged.values():
                assert int(appointment_id) in rows and (
                    patient_id == 0 or rows[int(appointment_id)] == patient_id
                )
            # Nothing half-written: every seat taken has its appointment, and no more.
            mismatched = (
                await conn.execute(
                    sa.text(
                        "SELECT count(*) FROM treatment_slot s WHERE s.capacity - s.remaining <>"
                        " (SELECT count(*) FROM appointment a WHERE a.slot_id = s.id AND a.status <> 'cancelled')"
                    )
                )
            ).scalar_one()
            assert mismatched == 0
            # Every appointment is one the clients were told about (or retried into): no orphans.
            assert set(rows) == {int(a) for a, _ in acknowledged.values()}
        await engine.dispose()
        await services.db.dispose()


async def test_redis_down_api_serves_and_outbox_waits(demo: Services, tmp_path: Path) -> None:
    with local_redis() as redis:
        settings = demo.settings
        extra = {"BEDSIDE_REDIS_URL": redis.url}
        data = await prepare(settings.database_url, therapists=1, patients=2)
        username, order_id, _ = data["patients"][0]
        with api_process(settings, log=tmp_path / "api.log", **extra) as base:
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                token = await _token(http, username)
                headers = {"authorization": f"Bearer {token}"}
                day = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
                redis.stop()
                assert (await http.get("/healthz")).status_code == 200
                ready = await http.get("/readyz")
                assert ready.status_code == 503 and ready.json()["checks"]["redis"].startswith(
                    "error"
                )
                slots = (
                    await http.post(
                        "/graphql",
                        json={"query": SLOTS, "variables": {"f": day, "t": day}},
                        headers=headers,
                    )
                ).json()
                slot = slots["data"]["availableSlots"][0]["id"]
                started = time.monotonic()
                booked = (
                    await http.post(
                        "/graphql",
                        json={
                            "query": BOOK,
                            "variables": {"s": slot, "o": str(order_id), "k": "redis-down"},
                        },
                        headers=headers,
                    )
                ).json()
                assert not booked.get("errors"), booked
                assert time.monotonic() - started < 10  # a dead Redis does not stall the request
                appointment = int(booked["data"]["bookAppointment"]["id"])

                async def pending() -> int:
                    async with demo.db.session() as session:
                        return (
                            await session.execute(
                                sa.text(
                                    "SELECT count(*) FROM notice WHERE subject_type = 'appointment' AND subject_id = :a AND delivered_at IS NULL"
                                ),
                                {"a": appointment},
                            )
                        ).scalar_one()

                waiting = await pending()
                assert waiting > 0  # the confirmation waits in the outbox
                redis.start()
                worker = subprocess.Popen(  # noqa: ASYNC220 - a long-running worker process
                    [str(Path(sys.executable).with_name("bedside")), "worker"],
                    env=env_for(settings, **extra),
                    stdout=(tmp_path / "worker.log").open("wb"),
                    stderr=subprocess.STDOUT,
                )
                try:
                    # The outbox drains only once the worker runs. Wait for its own word that it
                    # is up (arq writes its health-check key from inside its main loop, after
                    # the signal handlers are in place), so the SIGTERM below always reaches a
                    # running worker, never one still importing.
                    await _wait_for_worker(redis.url, worker, tmp_path / "worker.log")
                    deadline = time.monotonic() + 60
                    while await pending() and time.monotonic() < deadline:  # noqa: ASYNC110 - polling a server's state
                        await asyncio.sleep(0.5)
                    assert await pending() == 0, (tmp_path / "worker.log").read_text()[-2000:]
                finally:
                    worker.terminate()
                    worker.wait(10)
                # Stopped by SIGTERM: a clean exit, not a CancelledError traceback in the operator's log.
                log = (tmp_path / "worker.log").read_text()
                assert (worker.returncode, "CancelledError" in log) == (0, False), log[-3000:]
                assert (await http.get("/readyz")).status_code == 200


def _tail(log: Path) -> str:
    return log.read_text()[-2000:]


async def _wait_for_worker(redis_url: str, worker: subprocess.Popen[bytes], log: Path) -> None:
    from redis.asyncio import Redis

    from notifications.delivery.worker import QUEUE

    client = Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + 60
        while not await client.exists(QUEUE + health_check_key_suffix):
            assert worker.poll() is None, _tail(log)
            assert time.monotonic() < deadline, "the worker did not start: " + _tail(log)
            await asyncio.sleep(0.1)
    finally:
        await client.aclose()


async def test_disk_full_for_attachments_is_a_clear_error(demo: Services, tiny_disk: Path) -> None:
    from api.app import create_app

    settings = make_settings(demo.settings.database_url, tiny_disk)
    services = Services.build(settings, db=demo.db)
    app = create_app(settings, services=services)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        token = await _token(http, "pt.sun")
        headers = {"authorization": f"Bearer {token}"}
        from tests.treatments.helpers import png_bytes

        statuses = []
        for i in range(40):
            image = png_bytes(size=(120 + i, 90))  # distinct files, ~1-2 KB+ each
            image += bytes(range(256)) * 0  # keep a valid PNG
            response = await http.post(
                "/attachments",
                files={"file": (f"p{i}.png", image * 1, "image/png")},
                headers=headers,
            )
            statuses.append(response.status_code)
            if response.status_code != 201:
                break
        assert statuses[-1] == 507, statuses
        body = response.json()
        assert body["error"]["code"] == "STORAGE_FULL" and "/" in body["error"]["message"]
        async with demo.db.session() as session:
            stored = (
                await session.execute(sa.text("SELECT count(*) FROM attachment"))
            ).scalar_one()
        assert stored == statuses.count(201)  # the failed upload left no row
