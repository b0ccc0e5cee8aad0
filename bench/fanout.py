"""Fan-out: notices to many recipients through the outbox and arq workers to a local sink.

    .venv/bin/python bench/fanout.py [--n 100000] [--recipients 5000] [--workers 2]

Starts a local HTTP sink (its own process) and `--workers` arq worker processes built
exactly like `bedside worker` (plus a no-op job for the baseline), then:
  1. baseline: arq's own throughput for no-op jobs on the same workers and Redis;
  2. writes `--n` outbox rows (the columns `notifications.outbox.enqueue` writes) in one
     transaction, kicks the workers once as the API does after a commit, and waits until
     the sink has every message: deliveries per second and the lag of the last delivery.
Needs PostgreSQL and Redis (BEDSIDE_BENCH_REDIS_URL, default redis://127.0.0.1:6379/5).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent))
sys.path.insert(0, str(HERE.parent))

REDIS_URL = os.environ.get("BEDSIDE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")


# ------------------------------------------------------------------ the sink process
def run_sink(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    seen: set[str] = set()
    state = {"requests": 0, "last": 0.0}

    async def hook(request: Request) -> JSONResponse:
        await request.body()
        state["requests"] += 1
        seen.add(request.headers["idempotency-key"])  # a repeated key is acknowledged, not kept
        state["last"] = time.time()
        return JSONResponse({"ok": True})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse({"unique": len(seen), **state})

    app = Starlette(routes=[Route("/hook", hook, methods=["POST"]), Route("/stats", stats)])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# ------------------------------------------------------------------ the worker process
async def noop(ctx: dict) -> None:  # type: ignore[type-arg]
    return None


def run_worker() -> None:
    from arq import Worker, func

    from api.settings import load_settings
    from notifications.delivery.worker import worker_options

    options = worker_options(load_settings(), cron_seconds=None)
    options["functions"] = [*options["functions"], func(noop, name="noop", keep_result=0)]
    options["handle_signals"] = True
    Worker(**options).run()


# ------------------------------------------------------------------ the driver
def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for proc in processes:
        if proc.poll() is None:
            proc.terminate()
    for proc in processes:
        proc.wait(timeout=30)


async def wait_for(predicate, limit: float, every: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(every)
    raise TimeoutError("benchmark step did not finish in time")


async def drive(args: argparse.Namespace) -> None:
    import httpx
    import sqlalchemy as sa
    from _common import insert_users, scratch_database
    from arq import create_pool
    from sqlalchemy.ext.asyncio import create_async_engine

    from notifications.delivery.worker import QUEUE, redis_settings
    from notifications.outbox.policies import default_policies

    port = 18000 + os.getpid() % 1000
    sink = subprocess.Popen([sys.executable, str(HERE), "--sink-port", str(port)])  # noqa: ASYNC220 - start-up only
    workers: list[subprocess.Popen[bytes]] = []
    pool = await create_pool(redis_settings(REDIS_URL), default_queue_name=QUEUE)
    await pool.flushdb()
    try:
        async with scratch_database("bedside_bench_fanout") as url, httpx.AsyncClient() as http:
            engine = create_async_engine(url)
            async with engine.begin() as conn:
                await insert_users(conn, args.recipients)
                await conn.execute(
                    sa.text("""INSERT INTO notification_preference (user_id, channels, digest, extra)
                                              SELECT id, '["webhook"]'::jsonb, false, '{}'::jsonb FROM "user" """)
                )
            env = {
                **os.environ,
                "BEDSIDE_DATABASE_URL": url,
                "BEDSIDE_REDIS_URL": REDIS_URL,
                "BEDSIDE_LOG_JSON": "false",
                "BEDSIDE_NOTIFY_WEBHOOK_URL": f"http://127.0.0.1:{port}/hook",
                "BEDSIDE_SECRET_KEY": "bench-secret-0123456789abcdef0123456789",
                "BEDSIDE_LOG_LEVEL": "WARNING",
            }
            workers = [
                subprocess.Popen([sys.executable, str(HERE), "--worker"], env=env)  # noqa: ASYNC220
                for _ in range(args.workers)
            ]

            async def sink_stats() -> dict:  # type: ignore[type-arg]
                try:
                    return (await http.get(f"http://127.0.0.1:{port}/stats")).json()
                except httpx.HTTPError:
                    return {}

            await wait_for(sink_stats, 30)

            # 1. the floor: arq running no-op jobs on the same workers.
            started = time.time()
            for start in range(0, args.noop, 1000):
                await asyncio.gather(
                    *(pool.enqueue_job("noop") for _ in range(start, min(start + 1000, args.noop)))
                )

            async def queue_empty() -> bool:
                return await pool.zcard(QUEUE) == 0 and not await pool.keys("arq:in-progress:*")

            await wait_for(queue_empty, 600)
            noop_rate = args.noop / (time.time() - started)
            print(
                f"baseline arq no-op jobs: {args.noop:,} in {time.time() - started:.2f} s = {noop_rate:,.0f} jobs/s ({args.workers} workers)"
            )

            # 2. the outbox: N notices written in one transaction, then one kick.
            policy = default_policies().for_kind("bench.fanout")
            async with engine.begin() as conn:
                await conn.execute(
                    sa.text("""INSERT INTO notice (recipient_id, kind, title, body, payload, idempotency_key, critical, created_at,
                                                   policy_key, policy_version, reminders_sent, due_at)
                               SELECT 1 + g % :r, 'bench.fanout', '通知 ' || g, '正文', '{}'::jsonb, 'bench-' || g, false, now(),
                                      :pk, :pv, 0, now()
                               FROM generate_series(1, :n) g"""),
                    {"r": args.recipients, "n": args.n, "pk": policy.key, "pv": policy.version},
                )
            committed = time.time()
            for i in range(args.workers):  # what the API's after-commit kick does, once per worker
                await pool.enqueue_job("sweep", _job_id=f"kick:{i}")

            async def all_delivered() -> dict | None:  # type: ignore[type-arg]
                stats = await sink_stats()
                return stats if stats.get("unique", 0) >= args.n else None

            stats = await wait_for(all_delivered, 3600, every=0.2)
            lag = stats["last"] - committed
            rate = args.n / lag
            async with engine.connect() as conn:
                sent = (
                    await conn.execute(
                        sa.text("SELECT count(*) FROM notice_dispatch WHERE status = 'sent'")
                    )
                ).scalar_one()
            await engine.dispose()
            print(
                f"fan-out: {args.n:,} notices to {args.recipients:,} recipients, {stats['requests']:,} sink requests "
                f"({stats['unique']:,} distinct keys), {sent:,} dispatches recorded sent"
            )
            print(f"deliveries/s: {rate:,.0f}; lag of the last delivery after commit: {lag:.2f} s")
            print(f"ratio to arq's no-op floor: {rate / noop_rate:.2f}")
            stop(workers)  # before the scratch database goes
    finally:
        stop(workers)
        sink.terminate()
        sink.wait(timeout=10)
        await pool.flushdb()
        await pool.aclose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--recipients", type=int, default=5_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--noop", type=int, default=20_000, help="no-op jobs for the arq baseline")
    parser.add_argument("--sink-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink_port:
        run_sink(args.sink_port)
    elif args.worker:
        run_worker()
    else:
        asyncio.run(drive(args))


if __name__ == "__main__":
    main()
