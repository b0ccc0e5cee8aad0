"""Card taps under load: signed, encrypted DingTalk callbacks on distinct tasks.

    .venv/bin/python bench/callbacks.py [--n 2000] [--concurrency 50]

Creates its own PostgreSQL database, migrates it, loads the demo hospital and `n` pending
approval tasks, each with a delivered DingTalk card (through the simulated card API). Starts the Bedside app under uvicorn
on 127.0.0.1 (one worker, Redis for tokens and nonces, DingTalk's API simulated on
loopback) and fires `n` taps, `concurrency` in flight, each signed and encrypted the way
DingTalk does. Then the same payloads go to a bare Starlette endpoint (also uvicorn, one
worker) that only checks the signature, decrypts and answers the encrypted "success":
the floor any callback pays. Prints p50/p99 request→response and the rate of both, and the
ratio. A tap is answered once it is stored; the decision and the card update run right
after the answer, so the bench also reports when the last task was decided and its card
updated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

ADMIN_PG_URL = os.environ.get(
    "BEDSIDE_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get(
    "BEDSIDE_BENCH_REDIS_URL",
    f"redis://127.0.0.1:6379/{os.environ.get('BEDSIDE_TEST_REDIS_DB', '8')}",
)
DEFINITION = {
    "key": "bench_tap",
    "version": 1,
    "name": {"zh": "压测审批", "en": "Bench approval"},
    "stages": [
        {"id": "head", "name": {"zh": "科主任审批"}, "assignee": {"department_head": "applicant"}}
    ],
}


# -- the baseline: decrypt only ----------------------------------------------------------------
def _bare_app():  # type: ignore[no-untyped-def]
    from dingtalk.crypto import DingTalkCrypto
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tests.simulators.platforms import CALLBACK_TOKEN, DINGTALK, DINGTALK_AES_KEY

    crypto = DingTalkCrypto(CALLBACK_TOKEN, DINGTALK_AES_KEY, DINGTALK["app_key"])

    async def callback(request: Request) -> JSONResponse:
        q = request.query_params
        plaintext = crypto.decrypt_message(
            json.loads(await request.body()), q["msg_signature"], q["timestamp"], q["nonce"]
        )
        json.loads(plaintext)
        return JSONResponse(
            crypto.encrypt_message("success", nonce=q["nonce"], timestamp=q["timestamp"])
        )

    return Starlette(routes=[Route("/bots/dingtalk/callback", callback, methods=["POST"])])


bare_app = _bare_app() if os.environ.get("BEDSIDE_BENCH_BARE") == "1" else None


# -- setup ---------------------------------------------------------------------------------------
async def prepare(url: str, n: int, sim_url: str) -> list[str]:
    """Migrate, seed, and create `n` pending tasks with delivered cards; their card keys."""
    from api.assembly import install_domain
    from api.db import Database
    from api.demo import seed_demo
    from api.domain import approvals
    from api.migrate import upgrade
    from api.models.bots import BotCard
    from api.services import Services
    from bots import cards
    from tests.conftest import make_settings
    from tests.simulators.platforms import simulated_settings

    settings = simulated_settings(
        make_settings(url, ROOT / "var" / "bench"),
        type("Sim", (), {"url": sim_url})(),
        wecom_corp_id=None,
        redis_url=REDIS_URL,
    )
    db = Database(settings)
    await upgrade(db.engine)
    install_domain()
    services = Services.build(settings, db=db)
    async with db.transaction() as session:
        await seed_demo(session, services)
        await approvals.publish_definition(session, DEFINITION)
    from api.auth import Actor
    from api.models.people import User

    keys: list[str] = []
    batch = 250
    for offset in range(0, n, batch):
        async with db.transaction() as session:
            applicant = (
                await session.execute(sa.select(User).where(User.username == "dr.li"))
            ).scalar_one()
            head = (
                await session.execute(sa.select(User).where(User.username == "chief.wang"))
            ).scalar_one()
            for _ in range(min(batch, n - offset)):
                instance = await approvals.start_instance(
                    session,
                    definition_key="bench_tap",
                    applicant=applicant,
                    data={"grade": 2},
                    actor=Actor.from_user(applicant),
                )
                task = (await approvals.instance_tasks(session, instance.id or 0))[0]
                keys.append(cards.card_key(task.id or 0, head.id or 0))
    while (await cards.sweep(services))[
        "sent"
    ]:  # deliver the cards through the (simulated) card API
        pass
    async with db.session() as session:
        undelivered = await session.scalar(
            sa.select(sa.func.count()).select_from(BotCard).where(BotCard.dirty.is_(True))
        )
    assert not undelivered, f"{undelivered} cards not delivered"
    await services.extras["platforms"].aclose()
    await db.dispose()
    return keys


def spawn_decider(env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [str(Path(sys.executable).parent / "bedside"), "bots", "work"]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def start_server(args: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        *args,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        "--timeout-keep-alive",
        "60",
    ]
    return start_process(command, env, port, "/bots/dingtalk/callback")


def start_process(
    command: list[str], env: dict[str, str], port: int, probe: str
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=0.5)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(
        f"server on {port} did not start: {proc.stderr.read().decode() if proc.stderr else ''}"
    )


async def fire(
    port: int, payloads: list[tuple[dict[str, str], dict[str, str]]], concurrency: int
) -> tuple[list[float], float, list[int]]:
    latencies: list[float] = []
    statuses: list[int] = []
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30
    ) as client:

        async def one(params: dict[str, str], body: dict[str, str]) -> None:
            async with gate:
                t0 = time.perf_counter()
                try:
                    response = await client.post(
                        "/bots/dingtalk/callback", params=params, json=body
                    )
                except httpx.TransportError:
                    statuses.append(0)  # counted as a failed answer, not a latency
                    return
                latencies.append(time.perf_counter() - t0)
                statuses.append(response.status_code)

        started = time.perf_counter()
        await asyncio.gather(*(one(p, b) for p, b in payloads))
        elapsed = time.perf_counter() - started
    return latencies, elapsed, statuses


def summary(name: str, latencies: list[float], elapsed: float) -> dict[str, float]:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000
    rate = len(ordered) / elapsed
    print(
        f"{name:<34} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   {rate:7.1f} taps/s   ({len(ordered)} in {elapsed:.1f} s)"
    )
    return {"p50": p50, "p99": p99, "rate": rate}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers for both servers")
    parser.add_argument(
        "--decide-in",
        choices=["process", "worker"],
        default="process",
        help="decide taps in the answering process, or in a `bedside bots work` process",
    )
    args = parser.parse_args()

    from redis.asyncio import Redis

    from tests.simulators.platforms import (
        CALLBACK_TOKEN,
        DINGTALK,
        DINGTALK_AES_KEY,
        dingtalk_callback,
        dingtalk_card_tap,
        free_port,
    )

    # The platform simulator runs in its own process, so it takes no time from the load generator.
    sim_port = free_port()
    procs: list[subprocess.Popen[bytes]] = [
        start_process(
            [sys.executable, "-m", "tests.simulators.platforms", str(sim_port)],
            {},
            sim_port,
            "/gettoken",
        )
    ]
    sim_url = f"http://127.0.0.1:{sim_port}"

    name = f"bedside_bench_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(ADMIN_PG_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(ADMIN_PG_URL).set(database=name).render_as_string(hide_password=False)
    try:
        redis = Redis.from_url(REDIS_URL)
        await redis.flushdb()
        await redis.aclose()
        print(f"preparing {args.n} pending tasks with cards …", flush=True)
        keys = await prepare(url, args.n, sim_url)

        env = {
            "BEDSIDE_DATABASE_URL": url,
            "BEDSIDE_REDIS_URL": REDIS_URL,
            "BEDSIDE_SECRET_KEY": "bench-secret-key-0123456789abcdef0123",
            "BEDSIDE_LOG_LEVEL": "WARNING",
            "BEDSIDE_DATA_DIR": str(ROOT / "var" / "bench"),
            "BEDSIDE_DINGTALK_APP_KEY": DINGTALK["app_key"],
            "BEDSIDE_DINGTALK_APP_SECRET": DINGTALK["app_secret"],
            "BEDSIDE_DINGTALK_AGENT_ID": DINGTALK["agent_id"],
            "BEDSIDE_DINGTALK_CALLBACK_TOKEN": CALLBACK_TOKEN,
            "BEDSIDE_DINGTALK_CALLBACK_AES_KEY": DINGTALK_AES_KEY,
            "BEDSIDE_DINGTALK_API_BASE": sim_url,
            "BEDSIDE_DINGTALK_CARD_TEMPLATE_ID": "bench.schema",
        }
        app_port, bare_port = free_port(), free_port()
        workers = ["--workers", str(args.workers)]
        if args.decide_in == "worker":
            env["BEDSIDE_BOTS_DECIDE_IN_PROCESS"] = "false"
            procs.append(spawn_decider(env))
        print(f"taps decided in: {args.decide_in}", flush=True)
        procs.append(start_server(["api.asgi:app", *workers], env, app_port))
        procs.append(
            start_server(
                ["bench.callbacks:bare_app", *workers], {"BEDSIDE_BENCH_BARE": "1"}, bare_port
            )
        )

        def taps() -> list[tuple[dict[str, str], dict[str, str]]]:
            return [
                dingtalk_callback(
                    dingtalk_card_tap(out_track_id=key, userid="chief.wang", action="approve")
                )
                for key in keys
            ]

        print(
            f"load average before the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
            flush=True,
        )
        await fire(bare_port, taps()[:100], args.concurrency)  # warm the baseline up
        bare_latencies, bare_elapsed, bare_statuses = await fire(
            bare_port, taps(), args.concurrency
        )
        bare = summary("bare decrypt-only endpoint", bare_latencies, bare_elapsed)
        first_tap = time.perf_counter()
        latencies, elapsed, statuses = await fire(app_port, taps(), args.concurrency)
        full = summary("Bedside /bots/dingtalk/callback", latencies, elapsed)
        bad = [s for s in statuses if s != 200]

        # Decisions run right after each answer; wait until every task is decided and its
        # card updated (or give up after a while) to report how far behind they ran.
        engine = create_async_engine(url)
        decided = flushed = 0
        deadline = time.perf_counter() + 600
        while time.perf_counter() < deadline:
            async with engine.connect() as conn:
                decided = await conn.scalar(
                    sa.text("SELECT count(*) FROM approval_task WHERE status = 'approved'")
                )
                flushed = await conn.scalar(
                    sa.text(
                        "SELECT count(*) FROM bot_card WHERE dirty = false AND shown->>'state' = 'approved'"
                    )
                )
            if decided >= len(keys) and flushed >= len(keys):
                break
            await asyncio.sleep(0.5)
        settled = time.perf_counter() - first_tap
        await engine.dispose()
        print(
            f"decided {decided}/{len(keys)} tasks and updated {flushed} cards {settled:.1f} s after the first tap "
            f"({decided / settled:.1f} decisions/s); non-200 answers: {len(bad)} (baseline: {len([s for s in bare_statuses if s != 200])})"
        )
        print(
            f"ratio Bedside/bare: p50 x{full['p50'] / bare['p50']:.1f}, p99 x{full['p99'] / bare['p99']:.1f}, rate x{full['rate'] / bare['rate']:.2f}"
        )
        print(f"target p99 < 200 ms: {'met' if full['p99'] < 200 else 'NOT met'}")
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
