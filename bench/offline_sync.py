"""Offline sync benchmark (PostgreSQL): a PAD back after days offline, and many PADs pulling.

    .venv/bin/python bench/offline_sync.py [--n 5000] [--pads 200] [--changes 50000]

1. One PAD pushes N queued mutations (updatePatient adding an allergy, spread over the
   department's patients; each also writes its notice to the outbox) through the push
   engine in batches of 1,000. Prints mutations/s and peak Python memory (tracemalloc),
   beside a bare `executemany` UPDATE of the same rows in the same run, and the ratio.
2. PADS therapists in 10 departments each hold their department's patients (after an
   initial pull); then CHANGES server-side updates commit; then all PADs pull at once.
   Prints p50/p95 pull time beside the same number of concurrent bare SELECTs of each
   department's rows, and the ratio.

Creates its own database, migrates it, and drops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import tracemalloc
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.assembly import install_domain  # noqa: E402
from api.auth import Actor  # noqa: E402
from api.db import Database  # noqa: E402
from api.migrate import upgrade  # noqa: E402
from api.models.base import utcnow  # noqa: E402
from api.models.patients import Patient  # noqa: E402
from api.models.people import Department, User  # noqa: E402
from api.services import Services  # noqa: E402
from api.settings import Settings  # noqa: E402
from sync import pull, push  # noqa: E402

ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
DEPARTMENTS = 10


async def setup(
    services: Services, pads: int, patients_per_dept: int
) -> tuple[list[Actor], dict[int, list[int]]]:
    async with services.db.transaction() as session:
        depts = [
            Department(code=f"B{i}", name=f"康复{i}病区", name_en=f"Ward {i}")
            for i in range(DEPARTMENTS)
        ]
        session.add_all(depts)
        await session.flush()
        users = [
            User(
                username=f"pt.bench{i}",
                display_name=f"治疗师{i}",
                department_id=depts[i % DEPARTMENTS].id,
                roles=["therapist"],
            )
            for i in range(pads)
        ]
        session.add_all(users)
        await session.flush()
        for dept in depts:
            await session.execute(
                sa.insert(Patient),
                [
                    {
                        "mrn": f"B{dept.id}-{j}",
                        "name": f"患者{j}",
                        "gender": "U",
                        "department_id": dept.id,
                        "allergies": [],
                        "created_at": utcnow(),
                        "updated_at": utcnow(),
                    }
                    for j in range(patients_per_dept)
                ],
            )
        dept_ids = [d.id for d in depts]
        dept_head = users[0]
        depts[0].head_user_id = dept_head.id
        patients = {
            d: list(
                (
                    await session.execute(
                        sa.select(Patient.id).where(Patient.department_id == d).order_by(Patient.id)
                    )
                ).scalars()
            )
            for d in dept_ids
        }
        actors = [
            Actor(
                user_id=u.id,
                username=u.username,
                roles=frozenset({"therapist"}),
                department_id=u.department_id,
            )
            for u in users
        ]
    return actors, patients


async def bench_push(services: Services, actor: Actor, patient_ids: list[int], n: int) -> None:
    mutations = [
        push.PushMutation(
            id=i + 1,
            name="updatePatient",
            args={
                "patientId": patient_ids[i % len(patient_ids)],
                "base": {"allergies": []},
                "changes": {"allergies": [f"过敏原{i}"]},
            },
        )
        for i in range(n)
    ]
    group, client = "bench-" + uuid.uuid4().hex, "bench-" + uuid.uuid4().hex
    tracemalloc.start()
    started = time.perf_counter()
    for start in range(0, n, push.MAX_MUTATIONS_PER_PUSH):
        batch = mutations[start : start + push.MAX_MUTATIONS_PER_PUSH]
        result = await push.push(services, actor, push.PushRequest(group, client, 2, batch))
        assert all(r.status in ("applied", "merged") for r in result.results), result.results[:3]
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    rows = [
        {"a": [f"过敏原{i}"], "t": utcnow(), "pid": patient_ids[i % len(patient_ids)]}
        for i in range(n)
    ]
    tracemalloc.start()
    base_started = time.perf_counter()
    async with services.db.transaction() as session:
        await session.execute(
            sa.text(
                "UPDATE patient SET allergies = CAST(:a AS jsonb), updated_at = :t WHERE id = :pid"
            ).bindparams(sa.bindparam("a", type_=sa.JSON)),
            rows,
        )
    base_elapsed = time.perf_counter() - base_started
    _, base_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"push: {n} mutations in {elapsed:.2f}s = {n / elapsed:,.0f} mutations/s, peak {peak / 1e6:.1f} MB"
    )
    print(
        f"baseline executemany: {n} rows in {base_elapsed:.2f}s = {n / base_elapsed:,.0f} rows/s, peak {base_peak / 1e6:.1f} MB"
    )
    print(f"ratio (executemany rate / sync rate): {(n / base_elapsed) / (n / elapsed):.1f}x")


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def bench_pull(
    services: Services, actors: list[Actor], patients: dict[int, list[int]], changes: int
) -> None:
    cookies: dict[int, str] = {}
    groups = {a.user_id: "pad-" + uuid.uuid4().hex for a in actors}
    for actor in actors:  # every PAD synced once before going quiet
        result = await pull.pull(
            services, actor, cookie=None, client_group_id=groups[actor.user_id]
        )
        cookies[actor.user_id] = result.cookie
    all_ids = [pid for ids in patients.values() for pid in ids]
    done = 0
    while done < changes:  # server-side changes, in transactions of 1,000 rows
        batch = [
            {"pid": all_ids[(done + i) % len(all_ids)], "g": "MFU"[(done + i) % 3]}
            for i in range(min(1000, changes - done))
        ]
        async with services.db.transaction() as session:
            await session.execute(sa.text("UPDATE patient SET gender = :g WHERE id = :pid"), batch)
        done += len(batch)

    # PADs beyond the connection pool wait for a connection, as behind a real server;
    # the wait counts in their pull time.
    gate = asyncio.Semaphore(25)

    async def one_pull(actor: Actor) -> tuple[float, int]:
        started = time.perf_counter()
        async with gate:
            result = await pull.pull(
                services,
                actor,
                cookie=cookies[actor.user_id],
                client_group_id=groups[actor.user_id],
            )
        return time.perf_counter() - started, len(result.puts)

    started = time.perf_counter()
    timings = await asyncio.gather(*(one_pull(a) for a in actors))
    wall = time.perf_counter() - started
    times = [t for t, _ in timings]
    puts = sum(p for _, p in timings)

    async def bare(actor: Actor) -> float:
        started = time.perf_counter()
        async with gate, services.db.session() as session:
            rows = (
                (
                    await session.execute(
                        sa.select(Patient).where(Patient.department_id == actor.department_id)
                    )
                )
                .scalars()
                .all()
            )
            assert rows
        return time.perf_counter() - started

    base_times = await asyncio.gather(*(bare(a) for a in actors))
    p95, base_p95 = pct(times, 95), pct(list(base_times), 95)
    print(
        f"pull: {len(actors)} PADs after {changes} changes, {puts} puts in {wall:.2f}s wall; p50 {pct(times, 50) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms"
    )
    print(
        f"baseline bare SELECT of each department's rows, {len(actors)} concurrent: p95 {base_p95 * 1000:.0f} ms"
    )
    print(f"ratio (pull p95 / bare p95): {p95 / base_p95:.1f}x")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--n", type=int, default=5000, help="queued mutations of the PAD back online"
    )
    parser.add_argument("--pads", type=int, default=200)
    parser.add_argument("--changes", type=int, default=50000)
    parser.add_argument("--patients-per-dept", type=int, default=500)
    parser.add_argument("--skip-push", action="store_true")
    args = parser.parse_args()
    name = f"bedside_bench_sync_{uuid.uuid4().hex[:6]}"
    admin = create_async_engine(ADMIN, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(ADMIN).set(database=name).render_as_string(hide_password=False)
    settings = Settings(
        database_url=url,
        secret_key="bench-secret-key-0123456789abcdef0123",
        log_json=False,
        data_dir=Path("/tmp") / name,
    )
    db = Database(settings)
    try:
        await upgrade(db.engine)
        install_domain()
        services = Services.build(settings, db=db)
        actors, patients = await setup(services, args.pads, args.patients_per_dept)
        if not args.skip_push:
            await bench_push(services, actors[0], patients[actors[0].department_id], args.n)  # type: ignore[index]
        await bench_pull(services, actors, patients, args.changes)
    finally:
        await db.dispose()
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
