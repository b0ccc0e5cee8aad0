"""One reminder sweep over a large notice table touches only the due rows.

    .venv/bin/python bench/reminders.py [--n 1000000] [--unread 10000]

Builds `--n` read notices and `--unread` unread ones (delivered, reminders pending, due
now), then:
  * EXPLAIN ANALYZE of the sweep's claim query: rows examined through the partial index
    `ix_notice_due`, beside the same question asked without it (a scan for unread,
    undelivered-reminder rows: the baseline), and the ratio;
  * the wall time of one full sweep (plan + dispatch + record) reminding every unread
    notice through an in-process sink channel, beside the same run's floor: one bare
    UPDATE ... RETURNING of the same due rows (rolled back), and the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime

import sqlalchemy as sa
from _common import insert_users, scratch_database


class SinkChannel:
    name = "webhook"
    honours_idempotency = True

    def __init__(self) -> None:
        from notifications.delivery.channels import Limits

        self.limits = Limits()
        self.count = 0

    async def addresses(self, session, user_id):  # type: ignore[no-untyped-def]
        return [user_id]

    async def addresses_many(self, session, user_ids):  # type: ignore[no-untyped-def]
        return {u: [u] for u in user_ids}

    async def send(self, message):  # type: ignore[no-untyped-def]
        from notifications.delivery.channels import SendResult

        self.count += 1
        return SendResult("sent")


def rows_examined(plan: dict) -> int:  # type: ignore[type-arg]
    """Rows read by scans (index and sequential) anywhere in the plan."""
    total = 0
    node_type = plan.get("Node Type", "")
    if "Scan" in node_type:
        total += int(plan.get("Actual Rows", 0)) * int(plan.get("Actual Loops", 1)) + int(
            plan.get("Rows Removed by Filter", 0)
        )
    for child in plan.get("Plans", []):
        total += rows_examined(child)
    return total


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1_000_000, help="read notices")
    parser.add_argument(
        "--unread", type=int, default=10_000, help="unread notices due for a reminder"
    )
    parser.add_argument("--users", type=int, default=5_000)
    args = parser.parse_args()

    from sqlalchemy.ext.asyncio import create_async_engine

    async with scratch_database("bedside_bench_reminders") as url:
        engine = create_async_engine(url)
        now = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
        started = time.perf_counter()
        async with engine.begin() as conn:
            await insert_users(conn, args.users)
            common = """kind, title, body, payload, critical, created_at, policy_key, policy_version, reminders_sent"""
            await conn.execute(
                sa.text(
                    f"""INSERT INTO notice (recipient_id, idempotency_key, {common}, delivered_at, read_at, due_at)
                        SELECT 1 + g % :users, 'read-' || g, 'penalty.issued', '奖惩通知书', '', '{{}}'::jsonb, false,
                               CAST(:t AS timestamptz) - interval '3 day', 'penalty', 1, 0, CAST(:t AS timestamptz) - interval '3 day', CAST(:t AS timestamptz) - interval '2 day', NULL
                        FROM generate_series(1, :n) g"""
                ),
                {"users": args.users, "n": args.n, "t": now},
            )
            await conn.execute(
                sa.text(
                    f"""INSERT INTO notice (recipient_id, idempotency_key, {common}, delivered_at, read_at, due_at)
                        SELECT 1 + g % :users, 'unread-' || g, 'penalty.issued', '奖惩通知书', '', '{{}}'::jsonb, false,
                               CAST(:t AS timestamptz) - interval '3 hour', 'penalty', 1, 0, CAST(:t AS timestamptz) - interval '3 hour', NULL, CAST(:t AS timestamptz) - interval '1 minute'
                        FROM generate_series(1, :u) g"""
                ),
                {"users": args.users, "u": args.unread, "t": now},
            )
            await conn.execute(
                sa.text(
                    """INSERT INTO notification_preference (user_id, channels, digest, extra)
                       SELECT id, '["webhook"]'::jsonb, false, '{}'::jsonb FROM "user" """
                )
            )
        async with engine.connect() as conn:
            await conn.execute(sa.text("ANALYZE"))
            await conn.commit()
        print(
            f"fixture: {args.n:,} read + {args.unread:,} unread notices in {time.perf_counter() - started:.1f} s"
        )

        # The claim query of the sweep below (one batch takes every due row).
        claim = f"SELECT id FROM notice WHERE due_at <= :t ORDER BY due_at LIMIT {args.unread + 1} FOR UPDATE SKIP LOCKED"
        # Baseline: the same question without the schedule column's partial index, i.e.
        # finding unread notices still owed a reminder by scanning the table.
        naive = f"SELECT id FROM notice WHERE read_at IS NULL AND cancelled_at IS NULL AND reminders_sent < 3 ORDER BY created_at LIMIT {args.unread + 1}"
        async with engine.begin() as conn:
            plan = (
                await conn.execute(sa.text("EXPLAIN (ANALYZE, FORMAT JSON) " + claim), {"t": now})
            ).scalar_one()
            plan = plan if isinstance(plan, list) else json.loads(plan)
            base = (
                await conn.execute(sa.text("EXPLAIN (ANALYZE, FORMAT JSON) " + naive))
            ).scalar_one()
            base = base if isinstance(base, list) else json.loads(base)
        indexed_rows, indexed_ms = rows_examined(plan[0]["Plan"]), plan[0]["Execution Time"]
        naive_rows, naive_ms = rows_examined(base[0]["Plan"]), base[0]["Execution Time"]
        print(
            f"claim query (ix_notice_due): rows examined {indexed_rows:,} in {indexed_ms:.2f} ms "
            f"[{plan[0]['Plan'].get('Plans', [{}])[0].get('Node Type', plan[0]['Plan']['Node Type'])}]"
        )
        print(f"baseline scan for unread:    rows examined {naive_rows:,} in {naive_ms:.2f} ms")
        print(
            f"ratio rows examined: {naive_rows / max(indexed_rows, 1):,.0f}x fewer; time {naive_ms / max(indexed_ms, 0.001):,.0f}x faster"
        )
        await engine.dispose()

        from api.assembly import install_domain
        from api.services import Services
        from api.settings import Settings
        from notifications.delivery.dispatcher import Dispatcher
        from notifications.delivery.heap import settle_heap

        settings = Settings(
            database_url=url, secret_key="bench-secret-0123456789abcdef0123456789", log_json=False
        )
        install_domain()
        services = Services.build(settings)

        # Baseline: the least any sweep of these rows can cost, one bare statement that
        # claims the same due rows and moves their schedule (RETURNING what the sweep
        # reads), without deciding, writing dispatches or sending. Rolled back, so the
        # sweep below finds the rows as they were. (= ANY(ARRAY(...)): the rows by primary
        # key; an IN (subquery) is planned as a hash join over the whole table.)
        bare = f"""UPDATE notice SET reminders_sent = reminders_sent + 1, last_reminded_at = :t, due_at = :t + interval '2 hour'
                   WHERE id = ANY(ARRAY(SELECT id FROM notice WHERE due_at <= :t ORDER BY due_at LIMIT {args.unread + 1} FOR UPDATE SKIP LOCKED))
                   RETURNING id, recipient_id, kind, title, body, critical, created_at, read_at, cancelled_at, policy_key,
                             policy_version, due_at, delivered_at, reminders_sent, escalated_at, subject_type, subject_id, sender_id"""
        async with services.db.session() as session:
            await session.execute(sa.text("SELECT 1"))  # connected, as the sweep's pool will be
            started = time.perf_counter()
            returned = len((await session.execute(sa.text(bare), {"t": now})).all())
            baseline = time.perf_counter() - started
            await session.rollback()
        print(
            f"baseline bare UPDATE ... RETURNING of the due rows: {returned:,} rows in {baseline:.3f} s"
        )

        channel = SinkChannel()
        dispatcher = Dispatcher(services, {"webhook": channel}, batch_size=args.unread + 1)
        settle_heap()  # as a worker does once it has started (notifications.delivery.worker.startup)
        started = time.perf_counter()
        report = await dispatcher.sweep(now)
        elapsed = time.perf_counter() - started
        async with services.db.session() as session:
            due_left = (
                await session.execute(
                    sa.text("SELECT count(*) FROM notice WHERE due_at <= :t"), {"t": now}
                )
            ).scalar_one()
        print(
            f"one sweep: examined {report.notices_examined:,} notices, {report.reminders:,} reminders, "
            f"{channel.count:,} messages sent, {due_left} still due; {elapsed:.3f} s "
            f"({'under' if elapsed < 1 else 'OVER'} 1 s)"
        )
        print(f"ratio sweep / bare UPDATE ... RETURNING: {elapsed / max(baseline, 1e-6):.1f}x")
        await services.db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
