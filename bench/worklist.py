"""`myWorklist` with a large history: p95 server time over GraphQL, and its query plan.

    .venv/bin/python bench/worklist.py [--n 1000000] [--requests 200]

Fills a scratch PostgreSQL database with `n` historical appointments (INSERT … SELECT
generate_series: 50 therapists, 10,000 patients, two years), then asks `myWorklist` for
one therapist's day through the real ASGI app (bearer token, GraphQL parse, permission,
one query with patients and items, access-log write, commit) and times it in process. The baseline is the
same worklist SELECT, bare, on the same connection pool; the ratio is service/baseline.
Target: p95 under 30 ms. EXPLAIN shows the index the query uses.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from datetime import date, datetime
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa
from _pg import percentile, scratch_database

from api.app import create_app
from api.assembly import install_domain
from api.auth import issue_token
from api.db import Database
from api.domain.treatments.common import local_day_bounds
from api.migrate import upgrade
from api.models.people import User
from api.services import Services
from api.settings import Settings

THERAPISTS = 50
PATIENTS = 10_000
DAYS = 730
FIRST_DAY = date(2025, 1, 1)
TARGET_DAY = date(2026, 3, 2)
QUERY = """query($d: Date!) { myWorklist(date: $d) {
  id status startsAt room version patient { maskedName idNumber } item { code name } } }"""


class ServerTimes(logging.Handler):
    """Collects the server time the request middleware logs for each request."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "fields", None) or {}
        if fields.get("path") == "/graphql":
            self.values.append(float(fields["ms"]))


async def fill(db: Database, n: int) -> None:
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
                " VALUES ('PHYSIO', '理疗', 'Physiotherapy', 1, 30, 6000, '', true, '{}', '[]', '[]', true)"
            )
        )
        await conn.execute(
            sa.text(
                'INSERT INTO "user" (username, display_name, department_id, roles, is_active, token_version, failed_logins, created_at)'
                " SELECT 'pt' || g, '治疗师' || g, 1, '[\"therapist\"]', true, 0, 0, now() FROM generate_series(1, :n) g"
            ),
            {"n": THERAPISTS},
        )
        await conn.execute(
            sa.text(
                "INSERT INTO patient (mrn, name, gender, department_id, allergies, created_at, updated_at)"
                " SELECT 'W' || g, '患者' || g, 'U', 1, '[]', now(), now() FROM generate_series(1, :n) g"
            ),
            {"n": PATIENTS},
        )
        started = time.perf_counter()
        await conn.execute(
            sa.text(
                "INSERT INTO appointment (patient_id, item_id, therapist_id, room, starts_at, ends_at, status, channel, walk_in,"
                " receipt_no, receipt, version, created_at, updated_at)"
                " SELECT 1 + (g::bigint * 7919) % :patients, 1, 1 + g % :therapists, '理疗室',"
                "   ts, ts + interval '30 minutes', (ARRAY['fulfilled','fulfilled','fulfilled','noshow','cancelled'])[1 + g % 5],"
                "   'admin', false, 'YY' || g, '{}'::jsonb, 1, ts, ts"
                " FROM (SELECT g, CAST(:first AS timestamptz) + ((g / :therapists) % :days) * interval '1 day'"
                "   + interval '8 hours' + ((g / (:therapists * :days)) % 18) * interval '30 minutes' AS ts"
                "   FROM generate_series(1, :n) g) s"
            ),
            {
                "n": n,
                "patients": PATIENTS,
                "therapists": THERAPISTS,
                "days": DAYS,
                "first": datetime.combine(
                    FIRST_DAY, datetime.min.time(), tzinfo=ZoneInfo("Asia/Shanghai")
                ),
            },
        )
        print(f"  inserted {n:,} appointments in {time.perf_counter() - started:.1f} s")
        await conn.execute(sa.text("ANALYZE"))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="historical appointments")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    async with scratch_database("worklist") as url:
        settings = Settings(
            database_url=url,
            secret_key="bench-secret-key-0123456789abcdef0123",
            log_json=False,
            log_level="WARNING",
        )
        install_domain()
        services = Services.build(settings)
        db = services.db
        try:
            await upgrade(db.engine)
            print(
                f"worklist bench: {args.n:,} appointments, {THERAPISTS} therapists, {DAYS} days (PostgreSQL)"
            )
            await fill(db, args.n)
            async with db.session() as session:
                therapist = (
                    await session.execute(sa.select(User).where(User.username == "pt1"))
                ).scalar_one()
            token = issue_token(settings, therapist)
            begins, ends = local_day_bounds(TARGET_DAY)
            # The same statement the domain's worklist_entries sends (appointments of the
            # day with their patients and items), without the app around it.
            bare = sa.text(
                "SELECT a.*, p.*, i.* FROM appointment a JOIN patient p ON p.id = a.patient_id"
                " JOIN treatment_item i ON i.id = a.item_id"
                " WHERE a.therapist_id = :t AND a.starts_at >= :b AND a.starts_at < :e AND a.deleted_at IS NULL"
                " ORDER BY a.starts_at, a.id"
            )
            params = {"t": therapist.id, "b": begins, "e": ends}
            async with db.engine.connect() as conn:
                plan = (
                    (await conn.execute(sa.text("EXPLAIN (ANALYZE, BUFFERS) " + str(bare)), params))
                    .scalars()
                    .all()
                )
                rows = len((await conn.execute(bare, params)).all())
            server_ms = ServerTimes()
            logging.getLogger("bedside.http").addHandler(server_ms)
            logging.getLogger("bedside.http").setLevel(logging.INFO)
            app = create_app(settings, services=services)
            transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
            service_times: list[float] = []
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                headers = {"Authorization": f"Bearer {token}"}
                for i in range(args.requests + 20):
                    began = time.perf_counter()
                    response = await client.post(
                        "/graphql",
                        json={"query": QUERY, "variables": {"d": TARGET_DAY.isoformat()}},
                        headers=headers,
                    )
                    elapsed = time.perf_counter() - began
                    body = response.json()
                    assert not body.get("errors"), body
                    if i >= 20:  # warm-up done
                        service_times.append(elapsed)
                    else:
                        server_ms.values.clear()
                returned = len(body["data"]["myWorklist"])
            baseline_times: list[float] = []
            for i in range(args.requests + 20):
                began = time.perf_counter()
                async with db.session() as session:
                    (await session.execute(bare, params)).all()
                if i >= 20:
                    baseline_times.append(time.perf_counter() - began)
        finally:
            await db.dispose()
    p95 = percentile(service_times, 95) * 1000
    base95 = percentile(baseline_times, 95) * 1000
    print(
        f"  day {TARGET_DAY}: {rows} appointments for the therapist (GraphQL returned {returned})"
    )
    server95 = percentile(server_ms.values, 95)
    print(
        f"  myWorklist server time (request middleware, {len(server_ms.values)} requests): "
        f"p50 {percentile(server_ms.values, 50):.1f} ms, p95 {server95:.1f} ms ({'under' if server95 < 30 else 'OVER'} the 30 ms target)"
    )
    print(
        f"  myWorklist as the in-process client sees it: p50 {percentile(service_times, 50) * 1000:.1f} ms, p95 {p95:.1f} ms"
    )
    print(
        f"  baseline bare SELECT: p50 {percentile(baseline_times, 50) * 1000:.2f} ms, p95 {base95:.2f} ms"
    )
    print(f"  ratio service/baseline p95: {p95 / base95:.1f}x")
    print("  EXPLAIN (ANALYZE, BUFFERS) of the worklist query:")
    for line in plan:
        print("    " + line)


if __name__ == "__main__":
    asyncio.run(main())
