"""Booking under contention: N concurrent patients booking into S single-seat slots.

    .venv/bin/python bench/booking.py [--n 200] [--slots 2000] [--attempts 10] [--processes 1]

Each patient (a real patient account, the Official Account path) tries `attempts`
bookings of random slots through `api.domain.treatments.appointments.book_appointment`,
each in its own transaction (seat UPDATE, order lock, appointment, receipt, two outbox
notices). More attempts than seats, so many end FULLY_BOOKED. Prints bookings/s, p95
latency (as the patient sees it, waiting for one of the pool's connections included, and
while holding a connection) and the overbooking count (must be 0), beside a bare
`UPDATE … SET remaining = remaining - 1 WHERE remaining > 0` loop with the same
concurrency on the same slots, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from _pg import percentile, scratch_database
from sqlalchemy.ext.asyncio import create_async_engine

from api.auth import Actor
from api.db import Database
from api.domain.treatments.appointments import book_appointment
from api.errors import DomainError
from api.migrate import upgrade
from api.settings import Settings


async def prepare(db: Database, patients: int, slots: int, sessions: int) -> list[Actor]:
    start = datetime.now(UTC) + timedelta(days=1)
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO department (code, name, name_en) VALUES ('REHAB', '康复医学科', 'Rehabilitation')"
            )
        )
        await conn.execute(
            sa.text(
                "INSERT INTO treatment_item (code, name, name_en, department_id, duration_minutes, price_cents, notes, requires_consent,"
                " followup_rule, record_template, assessment_template, is_active)"
                " VALUES ('PHYSIO', '理疗', 'Physiotherapy', 1, 30, 6000, '请提前到达', true, '{}', '[]', '[]', true)"
            )
        )
        await conn.execute(
            sa.text(
                'INSERT INTO "user" (username, display_name, department_id, roles, is_active, token_version, failed_logins, created_at)'
                " SELECT 'patient' || g, '患者' || g, NULL, '[\"patient\"]', true, 0, 0, now() FROM generate_series(1, :n) g"
            ),
            {"n": patients},
        )
        await conn.execute(
            sa.text(
                "INSERT INTO patient (mrn, name, gender, department_id, user_id, allergies, created_at, updated_at)"
                " SELECT 'B' || g, '患者' || g, 'U', 1, g, '[]', now(), now() FROM generate_series(1, :n) g"
            ),
            {"n": patients},
        )
        await conn.execute(
            sa.text(
                "INSERT INTO treatment_order (patient_id, item_id, sessions, used_sessions, payment_status, source, created_at, updated_at)"
                " SELECT g, 1, :s, 0, 'paid', 'his', now(), now() FROM generate_series(1, :n) g"
            ),
            {"n": patients, "s": sessions},
        )
        await conn.execute(
            sa.text(
                "INSERT INTO treatment_schedule (item_id, room, weekdays, start_time, end_time, slot_minutes, capacity, working_days_only, valid_from, is_active)"
                " VALUES (1, '理疗室', '[0,1,2,3,4,5,6]', '00:00', '23:59', 30, 1, false, CURRENT_DATE, true)"
            )
        )
        await conn.execute(
            sa.text(
                "INSERT INTO treatment_slot (schedule_id, item_id, room, starts_at, ends_at, capacity, remaining)"
                " SELECT 1, 1, '理疗室', CAST(:start AS timestamptz) + (g * interval '30 minutes'), CAST(:start AS timestamptz) + ((g + 1) * interval '30 minutes'), 1, 1"
                " FROM generate_series(1, :n) g"
            ),
            {"n": slots, "start": start},
        )
        await conn.execute(sa.text("ANALYZE"))
    return [
        Actor(
            user_id=i,
            username=f"patient{i}",
            roles=frozenset({"patient"}),
            department_id=None,
            via="wechat_oa",
        )
        for i in range(1, patients + 1)
    ]


async def run_service(
    db: Database, actors: list[Actor], slot_ids: list[int], attempts: int, seed: int
) -> tuple[float, list[float], list[float], int]:
    rng = random.Random(seed)
    plans = {a.user_id: [rng.choice(slot_ids) for _ in range(attempts)] for a in actors}
    latencies: list[float] = []  # what the patient sees, waiting for a connection included
    held: list[float] = []  # from holding a connection to commit
    booked = 0

    async def patient(actor: Actor) -> None:
        nonlocal booked
        for slot_id in plans[actor.user_id]:
            began = time.perf_counter()
            connected = began
            try:
                async with db.transaction() as session:
                    await session.connection()
                    connected = time.perf_counter()
                    await book_appointment(
                        session,
                        slot_id,
                        actor=actor,
                        order_id=actor.user_id,
                        channel="official_account",
                    )
                booked += 1
            except DomainError:
                pass  # FULLY_BOOKED, or the patient already holds that slot
            done = time.perf_counter()
            latencies.append(done - began)
            held.append(done - connected)

    began = time.perf_counter()
    await asyncio.gather(*(patient(a) for a in actors))
    return time.perf_counter() - began, latencies, held, booked


async def run_bare(
    db: Database, actors: int, slot_ids: list[int], attempts: int, seed: int
) -> tuple[float, list[float], list[float], int]:
    rng = random.Random(seed)
    statement = sa.text(
        "UPDATE treatment_slot SET remaining = remaining - 1 WHERE id = :id AND remaining > 0 RETURNING id"
    )
    latencies: list[float] = []
    held: list[float] = []
    taken = 0

    async def worker(picks: list[int]) -> None:
        nonlocal taken
        for slot_id in picks:
            began = time.perf_counter()
            async with db.engine.begin() as conn:
                connected = time.perf_counter()
                if (await conn.execute(statement, {"id": slot_id})).first():
                    taken += 1
            done = time.perf_counter()
            latencies.append(done - began)
            held.append(done - connected)

    plans = [[rng.choice(slot_ids) for _ in range(attempts)] for _ in range(actors)]
    began = time.perf_counter()
    await asyncio.gather(*(worker(p) for p in plans))
    return time.perf_counter() - began, latencies, held, taken


def _engine(url: str, processes: int):  # type: ignore[no-untyped-def]
    # The patients outnumber the connections: they queue for one, as requests would; the
    # wait is part of the latency a patient sees, so the pool must not time out. The
    # processes share 30 connections, like a small fleet of API processes.
    size = max(2, 30 // processes)
    return create_async_engine(url, pool_size=size, max_overflow=0, pool_timeout=600)


async def _worker(
    url: str,
    kind: str,
    processes: int,
    actor_ids: list[int],
    slot_ids: list[int],
    attempts: int,
    seed: int,
) -> tuple[float, float, list[float], list[float], int]:
    settings = Settings(
        database_url=url, secret_key="bench-secret-key-0123456789abcdef0123", log_json=False
    )
    db = Database(settings, engine=_engine(url, processes))
    try:
        async with db.session() as session:  # connect before the clock starts
            await session.execute(sa.text("SELECT 1"))
        started = time.time()
        if kind == "service":
            actors = [
                Actor(
                    user_id=i,
                    username=f"patient{i}",
                    roles=frozenset({"patient"}),
                    department_id=None,
                    via="wechat_oa",
                )
                for i in actor_ids
            ]
            _, latencies, held, count = await run_service(db, actors, slot_ids, attempts, seed)
        else:
            _, latencies, held, count = await run_bare(db, len(actor_ids), slot_ids, attempts, seed)
        return started, time.time(), latencies, held, count
    finally:
        await db.dispose()


def _process(args: tuple) -> tuple[float, float, list[float], list[float], int]:  # type: ignore[type-arg]
    return asyncio.run(_worker(*args))


def run_processes(
    url: str, kind: str, processes: int, actor_ids: list[int], slot_ids: list[int], attempts: int
) -> tuple[float, list[float], list[float], int]:
    """Split the patients over `processes` OS processes; elapsed is first start to last end."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    shares = [actor_ids[i::processes] for i in range(processes)]
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(
            pool.map(
                _process,
                [
                    (url, kind, processes, share, slot_ids, attempts, seed)
                    for seed, share in enumerate(shares, 1)
                ],
            )
        )
    elapsed = max(r[1] for r in results) - min(r[0] for r in results)
    return (
        elapsed,
        [x for r in results for x in r[2]],
        [x for r in results for x in r[3]],
        sum(r[4] for r in results),
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="concurrent patients")
    parser.add_argument("--slots", type=int, default=2000)
    parser.add_argument("--attempts", type=int, default=10, help="bookings each patient tries")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="API processes the patients are spread over (fleet)",
    )
    args = parser.parse_args()
    async with scratch_database("booking") as url:
        settings = Settings(
            database_url=url, secret_key="bench-secret-key-0123456789abcdef0123", log_json=False
        )
        db = Database(settings, engine=_engine(url, 1))
        try:
            await upgrade(db.engine)
            actors = await prepare(db, args.n, args.slots, args.attempts)
            async with db.session() as session:
                slot_ids = list(
                    (
                        await session.execute(sa.text("SELECT id FROM treatment_slot ORDER BY id"))
                    ).scalars()
                )
            actor_ids = [a.user_id for a in actors]
            elapsed, latencies, held_times, booked = await asyncio.to_thread(
                run_processes, url, "service", args.processes, actor_ids, slot_ids, args.attempts
            )
            async with db.session() as session:
                overbooked = (
                    await session.execute(
                        sa.text(
                            "SELECT count(*) FROM treatment_slot s WHERE s.remaining < 0 OR s.capacity < ("
                            " SELECT count(*) FROM appointment a WHERE a.slot_id = s.id AND a.status = 'booked')"
                        )
                    )
                ).scalar_one()
                held = (
                    await session.execute(
                        sa.text("SELECT count(*) FROM appointment WHERE status = 'booked'")
                    )
                ).scalar_one()
                over_order = (
                    await session.execute(
                        sa.text(
                            "SELECT count(*) FROM treatment_order o WHERE o.sessions < (SELECT count(*) FROM appointment a WHERE a.order_id = o.id AND a.status = 'booked')"
                        )
                    )
                ).scalar_one()
            async with db.engine.begin() as conn:
                await conn.execute(sa.text("UPDATE treatment_slot SET remaining = capacity"))
            bare_elapsed, bare_latencies, bare_held, taken = await asyncio.to_thread(
                run_processes, url, "bare", args.processes, actor_ids, slot_ids, args.attempts
            )
        finally:
            await db.dispose()
    attempts = len(latencies)
    rate = attempts / elapsed
    bare_rate = len(bare_latencies) / bare_elapsed
    print(
        f"booking bench: {args.n} concurrent patients over {args.processes} processes, {args.slots} single-seat slots, "
        f"{attempts} attempts (PostgreSQL, 30 connections in all)"
    )
    print(
        f"  service  book_appointment: {rate:8.1f} attempts/s, {booked / elapsed:8.1f} bookings/s, "
        f"p50 {percentile(latencies, 50) * 1000:6.1f} ms, p95 {percentile(latencies, 95) * 1000:6.1f} ms, booked {booked} (rows {held})"
    )
    print(
        f"           holding a connection:                          "
        f"p50 {percentile(held_times, 50) * 1000:6.1f} ms, p95 {percentile(held_times, 95) * 1000:6.1f} ms"
    )
    print(
        f"  baseline bare UPDATE loop: {bare_rate:8.1f} attempts/s, {taken / bare_elapsed:8.1f} seats/s, "
        f"p50 {percentile(bare_latencies, 50) * 1000:6.1f} ms, p95 {percentile(bare_latencies, 95) * 1000:6.1f} ms, taken {taken}"
    )
    print(
        f"           holding a connection:                          "
        f"p50 {percentile(bare_held, 50) * 1000:6.1f} ms, p95 {percentile(bare_held, 95) * 1000:6.1f} ms"
    )
    print(f"  ratio service/baseline attempts/s: {rate / bare_rate:.3f}")
    print(f"  overbooked slots: {overbooked}   orders booked beyond their sessions: {over_order}")
    if overbooked or over_order or booked != held:
        raise SystemExit("OVERBOOKING DETECTED")


if __name__ == "__main__":
    asyncio.run(main())
