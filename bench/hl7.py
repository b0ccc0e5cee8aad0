"""HL7 listener throughput: ADT messages per second over 1 and over 8 MLLP connections.

    .venv/bin/python bench/hl7.py [--n 500] [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres]

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
                f"MSH|^~\\&|HIS|HOSP|BEDSIDE|HOSP|20250301093000+0800||ADT^A04^ADT_A01|{run}-{n}|P|2.5|||AL|NE||UNICODE UTF-8",
                "EVN|A04|20250301093000+0800",
                f"PID|1||{mrn}^^^HOSP^MR~11010519550307{n % 10000:04d}^^^CHN^NNCHN||欧阳^秀兰{n % 7}||19550307|F|||北京市朝阳区||^PRN^PH^^^^^^^^^139{n % 100000000:08d}",
                "PV1|1|I|0301^12^3^HOSP",
                "AL1|1|DA|^青霉素^L",
            ]
        ).encode("utf-8")
        + b"\r"
    )


async def drive(port: int, messages: list[bytes], connections: int) -> float:
    """Send all messages split over `connections` kept-alive connections; messages/second."""
    chunks = [messages[i::connections] for i in range(connections)]

    async def one(chunk: list[bytes]) -> None:
        async with MLLPClient("127.0.0.1", port, timeout=60) as client:
            for message in chunk:
                reply = await client.send(message)
                if b"MSA|AA" not in reply:
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
            services = Services.build(settings)
            await upgrade(services.db.engine)
            async with services.db.transaction() as session:
                await seed_demo(session, services)
            config = HL7Config(
                HL7Settings(port=0), HL7Mapping.from_dict({"departments": {"0301": "REHAB"}})
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
    finally:
        if services is not None:
            await services.db.dispose()
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


if __name__ == "__main__":
    asyncio.run(main())
