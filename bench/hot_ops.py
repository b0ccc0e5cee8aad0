"""API CPU per request of the fleet's hot operations, in one process, against PostgreSQL.

    .venv/bin/python bench/hot_ops.py [--n 200]

Starts a private PostgreSQL and Redis on loopback (as bench/fleet.py does), migrates, loads
the demo hospital and the fleet's bulk users, builds the ASGI app in this process and sends
each operation `n` times through the whole HTTP stack (middleware, GraphQL, the resolver,
the database) with an in-process transport, one request at a time. Prints, per operation,
the CPU this process spent per request (the API's share: PostgreSQL's own work is in
another process) and the median wall time, beside the same-run baseline `{ __typename }`
without a token, and the ratio to it. CPU time is steadier than latency on a shared
machine, and it is what bounds how many requests one API process serves per second.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._local import local_postgres, local_redis  # noqa: E402
from bench.fleet import (  # noqa: E402
    BEDSIDE,
    BOOK,
    DECIDE,
    LOGIN,
    PASSWORD,
    PUSH,
    SECRET,
    SLOTS,
    SUBMIT,
    TASKS,
    WORKLIST,
    prepare,
)


class Client:
    def __init__(self, http: httpx.AsyncClient, profile: str | None = None) -> None:
        self.http = http
        self.profile = profile
        self.profiler = cProfile.Profile() if profile else None
        self.cpu: dict[str, list[float]] = {}
        self.wall: dict[str, list[float]] = {}

    async def call(
        self, op: str, token: str | None, query: str, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        profiling = self.profiler is not None and op == self.profile
        if profiling:
            self.profiler.enable()  # type: ignore[union-attr]
        cpu, wall = time.process_time(), time.perf_counter()
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        if profiling:
            self.profiler.disable()  # type: ignore[union-attr]
        self.cpu.setdefault(op, []).append(time.process_time() - cpu)
        self.wall.setdefault(op, []).append(time.perf_counter() - wall)
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise RuntimeError(f"{op}: {response.status_code} {body.get('errors')}")
        return body["data"]

    async def login(self, username: str) -> str:
        return str(
            (await self.call("login", None, LOGIN, {"u": username, "p": PASSWORD}))["login"][
                "token"
            ]
        )


async def run(services_env: dict[str, str], url: str, n: int, profile: str | None) -> None:
    os.environ.update(services_env)
    from api.app import create_app
    from api.assembly import install_domain
    from api.services import Services
    from api.settings import load_settings

    data = await prepare(url, therapists=4, patients=4)
    settings = load_settings()
    install_domain()
    services = Services.build(settings)
    app = create_app(settings, services)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50001))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench") as http,
    ):
        c = Client(http, profile)
        therapist, patient_id = next(iter(data["therapists"].items()))
        patient, order_id, _ = data["patients"][0]
        tokens = {
            name: await c.login(name)
            for name in (therapist, patient, "dr.li", "chief.wang", "ma.zhao", "vp.chen")
        }
        today = date.today().isoformat()
        group, client_id = f"bench-{uuid.uuid4().hex}", f"pad-{uuid.uuid4().hex}"
        start = date.today() + timedelta(days=1)
        slots = [
            s["id"]
            for s in (
                await c.call(
                    "warm",
                    tokens[patient],
                    SLOTS,
                    {"f": start.isoformat(), "t": (start + timedelta(days=5)).isoformat()},
                )
            )["availableSlots"]
        ]
        base: list[str] = []
        for i in range(1, n + 1):
            await c.call("baseline {__typename}", None, "{ __typename }")
            await c.call("{__typename} signed in", tokens[therapist], "{ __typename }")
            worklist = (await c.call("myWorklist", tokens[therapist], WORKLIST, {"d": today}))[
                "myWorklist"
            ]
            assert len(worklist) == 8, worklist  # the therapist's morning (bench/fleet.py prepare)
            value = [f"过敏原{i}"]
            mutation = {
                "id": i,
                "name": "updatePatient",
                "args": {
                    "patientId": patient_id,
                    "base": {"allergies": base},
                    "changes": {"allergies": value},
                },
            }
            await c.call(
                "syncPush",
                tokens[therapist],
                PUSH,
                {
                    "in": {
                        "clientGroupId": group,
                        "clientId": client_id,
                        "schemaVersion": 2,
                        "mutations": [mutation],
                    }
                },
            )
            base = value
            await c.call(
                "availableSlots",
                tokens[patient],
                SLOTS,
                {"f": start.isoformat(), "t": (start + timedelta(days=1)).isoformat()},
            )
            await c.call(
                "bookAppointment",
                tokens[patient],
                BOOK,
                {"s": slots[i % len(slots)], "o": str(order_id), "k": uuid.uuid4().hex},
            )
            planned = datetime.now(UTC) + timedelta(days=3, minutes=i)
            application = {
                "patientId": str(data["surgery_patients"][0]),
                "procedureCode": "86.04",
                "plannedAt": planned.isoformat(),
                "emergency": False,
                "diagnosis": "急性阑尾炎",
                "anesthesia": "全麻",
                "preopAssessment": "心肺功能良好",
                "consentSigned": True,
            }
            await c.call(
                "submitSurgeryApplication",
                tokens["dr.li"],
                SUBMIT,
                {"in": application, "k": uuid.uuid4().hex},
            )
            for approver in ("chief.wang", "ma.zhao", "vp.chen"):
                pending = [
                    t
                    for t in (await c.call("myTasks", tokens[approver], TASKS))["myTasks"]
                    if t["status"] == "pending"
                ]
                if pending:
                    await c.call(
                        "decideTask",
                        tokens[approver],
                        DECIDE,
                        {"t": pending[0]["id"], "k": uuid.uuid4().hex},
                    )
    await services.db.dispose()

    # The first tenth warms caches (documents, statements, the render pool): left out.
    def trimmed(values: list[float]) -> list[float]:
        return values[len(values) // 10 :] or values

    base_cpu = statistics.mean(trimmed(c.cpu["baseline {__typename}"]))
    print(f"\nAPI CPU per request, one process, {n} rounds (the first tenth left out)")
    print(f"{'operation':<26}{'count':>7}{'cpu ms':>9}{'wall p50 ms':>13}{'cpu/baseline':>14}")
    for op in c.cpu:
        if op in ("warm", "login"):
            continue
        cpu = statistics.mean(trimmed(c.cpu[op]))
        print(
            f"{op:<26}{len(c.cpu[op]):>7}{cpu * 1000:>9.2f}{statistics.median(trimmed(c.wall[op])) * 1000:>13.2f}{cpu / base_cpu:>14.1f}"
        )
    if c.profiler is not None:
        print(f"\ncProfile of {profile} (all {n} calls; cProfile slows what it measures):")
        pstats.Stats(c.profiler).sort_stats("cumulative").print_stats(45)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument(
        "--profile",
        metavar="OPERATION",
        help="cProfile this operation's requests (e.g. availableSlots) and print the top functions",
    )
    args = parser.parse_args()
    with local_postgres() as pg, local_redis() as redis:
        url = pg.url_for("postgres")
        env = {
            "BEDSIDE_DATABASE_URL": url,
            "BEDSIDE_REDIS_URL": redis.url,
            "BEDSIDE_SECRET_KEY": SECRET,
            "BEDSIDE_DATA_DIR": str(pg.directory / "bedside-data"),
            "BEDSIDE_LOG_LEVEL": "WARNING",
            "BEDSIDE_ARGON2_TIME_COST": "1",
            "BEDSIDE_ARGON2_MEMORY_COST_KIB": "8192",
            "BEDSIDE_ARGON2_PARALLELISM": "1",
        }
        for command in (["migrate"], ["seed-demo"]):
            subprocess.run(
                [BEDSIDE, *command], env={**os.environ, **env}, check=True, capture_output=True
            )
        asyncio.run(run(env, url, args.n, args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
