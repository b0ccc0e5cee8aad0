"""HL7 listener throughput: ADT messages per second over 1 and over 8 MLLP connections,
and the catch-up after a restart: a backlog of queued orders applied.

    .venv/bin/python bench/hl7.py [--n 500] [--backlog 50000] [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]

The backlog: the listener goes down, the HIS's interface engine queues `--backlog`
OMG^O19 new orders (TQ1-14 total occurrences), a fresh listener starts (cold caches, new
pool), and the HIS sends its queue in order over one connection, each message waiting for
its ACK as MLLP does. Prints the time to apply all of them and the rate, beside the echo's
rate for the same messages, and checks every order is in the database once.

Creates its own PostgreSQL database, migrates it, loads the demo hospital, and runs the
real listener (parse, idempotency check, patient upsert, ACK, commit per message) beside a
bare MLLP echo server (same framing code, a fixed ACK, no parsing, no database) in the
same process and run. Prints messages per second for both and the ratio; the echo is the
ceiling the transport alone allows on this machine. A second baseline, one bare INSERT +
COMMIT per message, shows how much of the gap is the database's durable commit.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

# This file is named hl7.py: keep its folder off the path, or it hides the `hl7` library.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from api.assembly import install_domain  # noqa: E402
from api.demo import seed_demo  # noqa: E402
from api.migrate import upgrade  # noqa: E402
from api.services import Services  # noqa: E402
from api.settings import Settings  # noqa: E402
from integrations.hl7.config import HL7Config, HL7Mapping, HL7Settings  # noqa: E402
from integrations.hl7.listener import build_server  # noqa: E402
from integrations.hl7.mllp import MLLPClient, MLLPServer  # noqa: E402

FIXED_ACK = b"MSH|^~\\&|BEDSIDE|BEDSIDE|HIS|HOSP|20250301093000||ACK^A04^ACK|1|P|2.5\rMSA|AA|1\r"


def adt_message(run: str, n: int) -> bytes:
    mrn = f"B{n % 200:05d}"  # 200 patients: the first message of each creates, the rest update
    return (
        "\r".join(
            [
                f"MSH|^~\\&|HIS|HOSP|BEDSIDE|HOSP|20250301093000+0800||ADT^A04^ADT_A01|{run}-{n}|P|2.5|||||||UNICODE UTF-8",
                "EVN|A04|20250301093000+0800",
                f"PID|1||{mrn}^^^HOSP^MR~11010519550307{n % 10000:04d}^^^CHN^NNCHN||欧阳^秀兰{n % 7}||19550307|F|||北京市朝阳区||^PRN^PH^^^^^^^^^139{n % 100000000:08d}",
                "PV1|1|I|0301^12^3^HOSP",
                "AL1|1|DA|^青霉素^L",
            ]
        ).encode("utf-8")
        + b"\r"
    )


def order_message(run: str, n: int) -> bytes:
    """OMG^O19 v2.5, a new order of ten sessions for one of the demo's five patients."""
    mrn = f"P000{n % 5 + 1}"
    return (
        "\r".join(
            [
                f"MSH|^~\\&|HIS|HOSP|BEDSIDE|HOSP|20250301093000+0800||OMG^O19^OMG_O19|{run}-{n}|P|2.5|||||||UNICODE UTF-8",
                f"PID|1||{mrn}^^^HOSP^MR||周^建国",
                "PV1|1|O|0301",
                f"ORC|NW|{run}-ORD-{n}^HIS|||||||20250301093000+0800|||D1001^李^明",
                "TQ1|1|1|QD||||20250302080000+0800|||||||10",
                f"OBR|1|{run}-ORD-{n}^HIS||KF-PT-01^物理治疗^L",
            ]
        ).encode("utf-8")
        + b"\r"
    )


async def backlog(
    services: Services, config: HL7Config, count: int, echo_port: int
) -> tuple[float, float, float]:
    """(seconds to apply the backlog, its messages/second, the echo's rate for them)."""
    run = f"backlog-{uuid.uuid4().hex[:6]}"
    queued = [order_message(run, i) for i in range(count)]
    crashed = build_server(services, config, port=0)
    async with crashed:
        port = crashed.port  # the listener the HIS knows ...
    # ... goes down; the HIS queues; a new process starts on the same port.
    restarted = build_server(services, config, port=port)
    async with restarted:
        started = time.perf_counter()
        rate = await drive(port, queued, 1)
        seconds = time.perf_counter() - started
    async with services.db.session() as session:
        applied = (
            await session.execute(
                sa.text("SELECT count(*) FROM treatment_order WHERE his_order_no LIKE :p"),
                {"p": f"{run}-ORD-%"},
            )
        ).scalar_one()
    if applied != count:
        raise RuntimeError(f"{applied} of {count} queued orders applied")
    echo_rate = await drive(echo_port, queued[: min(count, 5000)], 1)
    return seconds, rate, echo_rate


async def drive(port: int, messages: list[bytes], connections: int) -> float:
    """Send all messages split over `connections` kept-alive connections; messages/second."""
    chunks = [messages[i::connections] for i in range(connections)]

    async def one(chunk: list[bytes]) -> None:
        async with MLLPClient("127.0.0.1", port, timeout=60) as client:
            for message in chunk:
                reply = await client.send(message)
                if b"MSA|AA" not in reply and b"MSA|CA" not in reply:
                    raise RuntimeError(f"not accepted: {reply[:200]!r}")

    started = time.perf_counter()
    await asyncio.gather(*(one(c) for c in chunks))
    return len(messages) / (time.perf_counter() - started)


async def commit_rate(services: Services, count: int, connections: int) -> float:
    """A second baseline: one INSERT + COMMIT per message, no HL7 at all (the disk's pace)."""
    async with services.db.engine.begin() as conn:
        await conn.execute(
            sa.text("CREATE TABLE IF NOT EXISTS bench_commit (id serial PRIMARY KEY, body text)")
        )

    async def one(n: int) -> None:
        for _ in range(n):
            async with services.db.engine.begin() as conn:
                await conn.execute(sa.text("INSERT INTO bench_commit (body) VALUES ('x')"))

    started = time.perf_counter()
    await asyncio.gather(*(one(count // connections) for _ in range(connections)))
    return (count // connections * connections) / (time.perf_counter() - started)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500, help="messages per measurement")
    parser.add_argument(
        "--backlog", type=int, default=50000, help="orders queued while the listener is down"
    )
    parser.add_argument(
        "--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    args = parser.parse_args()

    name = f"bedside_bench_hl7_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(args.database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = (
        sa.engine.make_url(args.database_url)
        .set(database=name)
        .render_as_string(hide_password=False)
    )
    services = None
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            settings = Settings(
                database_url=url,
                data_dir=Path(data_dir),
                secret_key="bench-secret-key-0123456789abcdef",
                log_json=False,
                log_level="WARNING",
            )
            install_domain()
            services = Services.build(settings)
            await upgrade(services.db.engine)
            async with services.db.transaction() as session:
                await seed_demo(session, services)
            config = HL7Config(
                HL7Settings(port=0),
                HL7Mapping.from_dict(
                    {
                        "departments": {"0301": "REHAB"},
                        "item_codes": {"KF-PT-01": "PHYSIO"},
                        "doctors": {"D1001": "dr.li"},
                    }
                ),
            )

            async def echo(frame: bytes) -> bytes:
                return FIXED_ACK

            results: dict[tuple[str, int], float] = {}
            listener = build_server(services, config, port=0)
            async with listener, MLLPServer(echo, port=0) as echo_server:
                await drive(
                    listener.port, [adt_message("warm", i) for i in range(50)], 1
                )  # warm-up: pool, caches
                for connections in (1, 8):
                    run = f"c{connections}"
                    results[("echo", connections)] = await drive(
                        echo_server.port, [adt_message(run, i) for i in range(args.n)], connections
                    )
                    results[("hl7", connections)] = await drive(
                        listener.port, [adt_message(run, i) for i in range(args.n)], connections
                    )
                    results[("commit", connections)] = await commit_rate(
                        services, args.n, connections
                    )
                catch_up = await backlog(services, config, args.backlog, echo_server.port)

            print(
                f"HL7 MLLP listener, {args.n} ADT^A04 messages per run, PostgreSQL, one process (2-core machine)"
            )
            print(
                f"{'connections':>11} {'echo msg/s':>12} {'hl7 msg/s':>12} {'hl7/echo':>9} {'bare commit/s':>14} {'hl7/commit':>11}"
            )
            for connections in (1, 8):
                echo_rate, hl7_rate, commit = (
                    results[("echo", connections)],
                    results[("hl7", connections)],
                    results[("commit", connections)],
                )
                print(
                    f"{connections:>11} {echo_rate:>12.0f} {hl7_rate:>12.0f} {hl7_rate / echo_rate:>9.3f} {commit:>14.0f} {hl7_rate / commit:>11.2f}"
                )
            seconds, rate, echo_rate = catch_up
            print(
                f"backlog after a restart: {args.backlog} OMG^O19 orders applied in {seconds:.1f} s,"
                f" {rate:.0f} msg/s over one connection; echo {echo_rate:.0f} msg/s;"
                f" hl7/echo {rate / echo_rate:.3f}; every order applied once"
            )
    finally:
        if services is not None:
            await services.db.dispose()
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
