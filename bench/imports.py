"""How long loading 2,000 staff takes, beside a bare executemany of the same rows.

    .venv/bin/python bench/imports.py

On a scratch PostgreSQL database (migrated, dropped after): the departments of
tests/fixtures/, then `bedside import staff tests/fixtures/staff.csv` run as an operator
runs it (its own process: start-up, reading, checking every row, the accounts with their
roles, superiors, heads, DingTalk / WeCom ids and history, argon2 with the production
cost), and the same import in this process; then, in the same run, a bare `executemany`
of the same 2,000 user rows (one precomputed password hash, nothing checked, no history)
into an emptied table. Prints the three times and the ratio of each import to the
baseline. The goal is under 30 s for the command on this machine.
"""

from __future__ import annotations

import asyncio
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import scratch_database  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
STAFF = FIXTURES / "staff.csv"


def bedside(url: str, *args: str) -> float:
    env = {**os.environ, "BEDSIDE_DATABASE_URL": url, "BEDSIDE_DATA_DIR": str(ROOT / "var")}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", *args], env=env, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"bedside {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed


async def empty_people(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "DELETE FROM audit_event WHERE stream LIKE 'user:%' OR stream LIKE 'department:%'"
            )
        )
        await conn.execute(
            sa.text(
                "DELETE FROM audit_stream WHERE stream LIKE 'user:%' OR stream LIKE 'department:%'"
            )
        )
        await conn.execute(sa.text("UPDATE department SET head_user_id = NULL"))
        await conn.execute(sa.text("DELETE FROM external_identity"))
        await conn.execute(sa.text('DELETE FROM "user"'))
    await engine.dispose()


async def in_process(url: str) -> float:
    from api.assembly import install_domain
    from api.auth import SYSTEM_ACTOR
    from api.domain.imports import run_import
    from api.services import Services
    from api.settings import load_settings

    settings = load_settings(database_url=url, data_dir=ROOT / "var")
    install_domain()
    services = Services.build(settings)
    try:
        started = time.perf_counter()
        async with services.db.sessionmaker() as session:
            report = await run_import(
                session,
                "staff",
                STAFF,
                actor=SYSTEM_ACTOR,
                settings=settings,
                hashing=services.hashing,
            )
            assert report.ok and report.count("create") == 2000, report.errors[:3]
            await session.commit()
        return time.perf_counter() - started
    finally:
        await services.db.dispose()


async def bare_executemany(url: str) -> float:
    from api.auth import PasswordHashing
    from api.settings import load_settings

    password_hash = PasswordHashing(load_settings()).hash("Bedside@2026")
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            departments = dict(
                (await conn.execute(sa.text("SELECT code, id FROM department"))).all()
            )
        started = time.perf_counter()
        with STAFF.open(encoding="utf-8", newline="") as handle:
            rows = [
                {
                    "username": r["用户名 username"],
                    "display_name": r["姓名 name"],
                    "department_id": departments.get(r["科室编码 department code"]),
                    "roles": '["surgeon"]',
                    "mobile": r["手机号 mobile"],
                    "job_number": r["工号 job number"],
                    "password_hash": password_hash,
                }
                for r in csv.DictReader(handle)
            ]
        async with engine.begin() as conn:
            await conn.execute(
                sa.text(
                    """INSERT INTO "user" (username, display_name, department_id, roles, mobile,
                           job_number, password_hash, password_must_change, is_active,
                           token_version, failed_logins, created_at)
                       VALUES (:username, :display_name, :department_id, CAST(:roles AS jsonb),
                           :mobile, :job_number, :password_hash, true, true, 0, 0, now())"""
                ),
                rows,
            )
        return time.perf_counter() - started
    finally:
        await engine.dispose()


async def main() -> None:
    async with scratch_database("bench_imports") as url:
        bedside(url, "import", "departments", str(FIXTURES / "departments.csv"))
        command = bedside(url, "import", "staff", str(STAFF))
        await empty_people(url)
        library = await in_process(url)
        await empty_people(url)
        baseline = await bare_executemany(url)
    print("2,000 staff (tests/fixtures/staff.csv) into PostgreSQL")
    print(f"  bare executemany of the user rows (baseline): {baseline:7.2f} s")
    print(
        f"  run_import in this process:                   {library:7.2f} s  ({library / baseline:5.1f}x)"
    )
    print(
        f"  `bedside import staff` (own process):         {command:7.2f} s  ({command / baseline:5.1f}x)"
    )
    print(f"  goal: under 30 s for the command: {'met' if command < 30 else 'NOT met'}")


if __name__ == "__main__":
    asyncio.run(main())
