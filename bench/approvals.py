"""Surgery approvals through the service layer vs. bare single-row transactions.

    .venv/bin/python bench/approvals.py [--n 10000] [--concurrency 4] [--staff 5000]

Creates its own PostgreSQL database, migrates, loads the demo hospital, submits N surgery
applications (grades 1-4 in turn, so 1, 1, 2 or 3 decisions each; every final approval
renders and stores the 手术审批通知书 PDF) and decides every task, one transaction per
decision, exactly as a tap on a card does. The floor: as many bare transactions of one
INSERT and one UPDATE of a single row, at the same concurrency, in the same run.
Prints decisions per second and p95 decision latency beside the floor, and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.assembly import install_domain  # noqa: E402
from api.auth import Actor  # noqa: E402
from api.demo import seed_demo  # noqa: E402
from api.domain import approvals, surgery  # noqa: E402
from api.migrate import upgrade  # noqa: E402
from api.models.approvals import ApprovalInstance  # noqa: E402
from api.models.base import utcnow  # noqa: E402
from api.models.patients import Patient  # noqa: E402
from api.models.people import User  # noqa: E402
from api.services import Services  # noqa: E402
from api.settings import Settings  # noqa: E402

ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
PROCEDURES = ["86.3", "47.09", "51.23", "52.7"]  # grades 1, 2, 3, 4


def p95(values: list[float]) -> float:
    return (
        statistics.quantiles(values, n=100)[94]
        if len(values) >= 2
        else (values[0] if values else 0.0)
    )


async def run_pool(items: list, worker, concurrency: int) -> None:  # type: ignore[no-untyped-def,type-arg]
    queue: asyncio.Queue = asyncio.Queue()  # type: ignore[type-arg]
    for item in items:
        queue.put_nowait(item)

    async def loop() -> None:
        while True:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await worker(item)

    await asyncio.gather(*(loop() for _ in range(concurrency)))


async def add_staff(db, count: int) -> None:  # type: ignore[no-untyped-def]
    """A hospital's size: `count` more active staff across the departments, holding
    roles no approval step asks for (surgeons, therapists, nurses), so the work per
    decision is the same and only the size of the user table changes."""
    roles = [["surgeon"], ["therapist"], ["nurse"], ["surgeon", "nurse"]]
    async with db.transaction() as s:
        departments = list((await s.execute(sa.text("SELECT id FROM department"))).scalars())
        await s.execute(
            sa.insert(User),
            [
                {
                    "username": f"staff.{i:05d}",
                    "display_name": f"职工{i:05d}",
                    "department_id": departments[i % len(departments)],
                    "roles": roles[i % len(roles)],
                    "is_active": True,
                    "created_at": utcnow(),
                }
                for i in range(count)
            ],
        )


async def bench(
    n: int, concurrency: int, url: str, data_dir: Path, staff: int = 0
) -> dict[str, float]:
    settings = Settings(
        database_url=url,
        data_dir=data_dir,
        secret_key="bench-secret-key-0123456789abcdef0123456789",
        argon2_time_cost=1,
        argon2_memory_cost_kib=1024,
        argon2_parallelism=1,
        log_json=False,
    )
    install_domain()
    services = Services.build(settings)
    db = services.db
    await upgrade(db.engine)
    async with db.transaction() as s:
        await seed_demo(s, services)
    if staff:
        await add_staff(db, staff)
    async with db.session() as s:
        users = {
            u.username: u
            for u in (
                await s.execute(sa.select(User).where(sa.not_(User.username.startswith("staff."))))
            ).scalars()
        }
        patients = [
            p.id
            for p in (
                await s.execute(
                    sa.select(Patient).where(Patient.mrn.in_(["P0002", "P0003", "P0004"]))
                )
            ).scalars()
        ]
    actors = {u.id: Actor.from_user(u) for u in users.values()}
    surgeon = users["dr.qian"]
    surgeon_actor = actors[surgeon.id]

    # Submissions (pre-check + routing), measured for the record.
    instance_ids: list[int] = []
    submit_times: list[float] = []

    async def submit(i: int) -> None:
        request = surgery.SurgeryRequest(
            patient_id=patients[i % len(patients)],
            procedure_code=PROCEDURES[i % 4],
            planned_at=utcnow() + timedelta(days=1),
            emergency=i % 5 == 0,
            diagnosis="胆囊结石伴慢性胆囊炎",
            anesthesia="全身麻醉",
            preop_assessment="ASA II级",
            consent_signed=True,
            surgeon=surgeon,
        )
        start = time.perf_counter()
        async with db.transaction() as s:
            instance = await surgery.submit_surgery_application(s, request, actor=surgeon_actor)
        submit_times.append(time.perf_counter() - start)
        assert instance.id is not None
        instance_ids.append(instance.id)

    t0 = time.perf_counter()
    await run_pool(list(range(n)), submit, concurrency)
    submit_wall = time.perf_counter() - t0

    # Decisions: every pending task of an instance until it closes, one transaction each.
    latencies: list[float] = []
    final_latencies: list[float] = []

    async def decide_all(instance_id: int) -> None:
        while True:
            async with db.session() as s:
                tasks = await approvals.pending_tasks(s, instance_id)
            if not tasks:
                return
            for task in tasks:
                start = time.perf_counter()
                async with db.transaction() as s:
                    row = await approvals.access_task_for_decision(
                        s, actors[task.assignee_id], task.id or 0
                    )
                    await approvals.decide_task(
                        s, row, actor=actors[task.assignee_id], decision="approve", comment="同意"
                    )
                    closed = (await s.get(ApprovalInstance, instance_id)).status != "running"  # type: ignore[union-attr]
                elapsed = time.perf_counter() - start
                latencies.append(elapsed)
                if closed:
                    final_latencies.append(elapsed)

    # SQL statements sent while deciding (the bench's own pending-task reads included):
    # round trips, not Python, set most of a decision's cost.
    statements = 0

    def count_statement(*_: object) -> None:
        nonlocal statements
        statements += 1

    event.listen(db.engine.sync_engine, "before_cursor_execute", count_statement)
    t0 = time.perf_counter()
    await run_pool(instance_ids, decide_all, concurrency)
    decide_wall = time.perf_counter() - t0
    event.remove(db.engine.sync_engine, "before_cursor_execute", count_statement)
    async with db.session() as s:
        approved = await s.scalar(
            sa.text(
                "SELECT count(*) FROM approval_instance WHERE kind='surgery' AND status='approved'"
            )
        )
    assert approved == n, f"only {approved} of {n} approved"

    # The floor: the same number of bare INSERT+UPDATE transactions, same concurrency.
    decisions = len(latencies)
    async with db.engine.begin() as conn:
        await conn.execute(
            sa.text(
                "CREATE TABLE bench_floor (id bigserial PRIMARY KEY, v int NOT NULL, at timestamptz NOT NULL)"
            )
        )
    floor_times: list[float] = []

    async def floor_txn(_: int) -> None:
        start = time.perf_counter()
        async with db.engine.begin() as conn:
            row_id = (
                await conn.execute(
                    sa.text("INSERT INTO bench_floor (v, at) VALUES (0, now()) RETURNING id")
                )
            ).scalar_one()
            await conn.execute(
                sa.text("UPDATE bench_floor SET v = v + 1, at = now() WHERE id = :id"),
                {"id": row_id},
            )
        floor_times.append(time.perf_counter() - start)

    t0 = time.perf_counter()
    await run_pool(list(range(decisions)), floor_txn, concurrency)
    floor_wall = time.perf_counter() - t0
    await db.dispose()
    return {
        "applications": n,
        "submit_per_s": n / submit_wall,
        "submit_p95_ms": p95(submit_times) * 1000,
        "decisions": decisions,
        "decisions_per_s": decisions / decide_wall,
        "decision_p95_ms": p95(latencies) * 1000,
        "statements_per_decision": statements / len(latencies),
        "final_decision_p95_ms": p95(final_latencies) * 1000,
        "floor_per_s": decisions / floor_wall,
        "floor_p95_ms": p95(floor_times) * 1000,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10_000, help="applications to submit and decide")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--admin-url", default=ADMIN_URL)
    parser.add_argument(
        "--staff", type=int, default=0, help="extra active staff in the hospital (e.g. 5000)"
    )
    args = parser.parse_args()

    name = f"bedside_bench_approvals_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(args.admin_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = (
        sa.engine.make_url(args.admin_url).set(database=name).render_as_string(hide_password=False)
    )
    try:
        with tempfile.TemporaryDirectory(prefix="bedside-bench-") as data_dir:
            r = await bench(args.n, args.concurrency, url, Path(data_dir), staff=args.staff)
    finally:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()

    ratio = r["decisions_per_s"] / r["floor_per_s"]
    print(
        f"applications submitted and approved: {r['applications']} (concurrency {args.concurrency}, {args.staff} extra staff)"
    )
    print(
        f"submissions (pre-check + routing):  {r['submit_per_s']:8.1f} /s   p95 {r['submit_p95_ms']:7.2f} ms"
    )
    print(
        f"decisions through the service layer: {r['decisions_per_s']:8.1f} /s   p95 {r['decision_p95_ms']:7.2f} ms  ({r['decisions']:.0f} decisions)"
    )
    print(
        f"  final decisions (with the PDF):               p95 {r['final_decision_p95_ms']:7.2f} ms"
    )
    print(
        f"  SQL statements per decision: {r['statements_per_decision']:.1f} (the floor: 2), plus BEGIN/COMMIT each"
    )
    print(
        f"floor: bare INSERT+UPDATE transactions: {r['floor_per_s']:8.1f} /s   p95 {r['floor_p95_ms']:7.2f} ms"
    )
    print(f"ratio decisions/floor: {ratio:.3f} (goal >= 0.333)")


if __name__ == "__main__":
    asyncio.run(main())
