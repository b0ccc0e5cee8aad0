"""Loading a hospital through `bedside import`, as an operator does on go-live day:
the files in tests/fixtures/ on an empty, migrated PostgreSQL database, then signing in
as one of the imported staff over GraphQL."""

from __future__ import annotations

import asyncio
import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import create_async_engine

from api.services import Services
from tests.conftest import GraphQLClient, error_code

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ORDER = ["departments", "staff", "catalog", "items", "schedules", "penalty-items"]
TABLES = [
    "department",
    "user",
    "external_identity",
    "surgery_procedure",
    "treatment_item",
    "consent_text",
    "treatment_schedule",
    "penalty_item",
    "audit_event",
    "audit_stream",
]


def cli_env(services: Services) -> dict[str, str]:
    settings = services.settings
    return {
        **os.environ,
        "BEDSIDE_DATABASE_URL": settings.database_url,
        "BEDSIDE_SECRET_KEY": settings.secret_key or "",
        "BEDSIDE_DATA_DIR": str(settings.data_dir),
        "BEDSIDE_ARGON2_TIME_COST": "1",
        "BEDSIDE_ARGON2_MEMORY_COST_KIB": "1024",
        "BEDSIDE_ARGON2_PARALLELISM": "1",
    }


async def bedside(
    services: Services, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "api.cli", *args],
        env=cli_env(services),
        capture_output=True,
        text=True,
        cwd=cwd,
    )


async def counts(services: Services) -> dict[str, int]:
    async with services.db.session() as session:
        return {
            table: (await session.execute(sa.text(f'SELECT count(*) FROM "{table}"'))).scalar_one()
            for table in TABLES
        }


def rows_of(name: str) -> list[dict[str, str]]:
    with (FIXTURES / name).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def fixture(kind: str) -> str:
    return str(FIXTURES / (f"{kind}.xlsx" if kind == "departments" else f"{kind}.csv"))


async def load_hospital(services: Services) -> None:
    for kind in ORDER:
        done = await bedside(services, "import", kind, fixture(kind))
        assert done.returncode == 0, (kind, done.stdout, done.stderr)
        if kind == "staff":  # a long file reports its progress
            assert "… 1000/2000" in done.stderr and "… 2000/2000" in done.stderr


async def test_a_hospital_loads_from_its_files_and_loading_again_changes_nothing(
    services: Services, http: httpx.AsyncClient
) -> None:
    await load_hospital(services)
    loaded = await counts(services)
    staff = rows_of("staff.csv")
    assert loaded["department"] == 30 == len(rows_of("departments.csv"))
    assert loaded["user"] == 2000 == len(staff)
    assert loaded["surgery_procedure"] == len(rows_of("catalog.csv")) >= 300
    assert loaded["treatment_item"] == 40
    assert loaded["treatment_schedule"] == len(rows_of("schedules.csv"))
    assert loaded["penalty_item"] == len(rows_of("penalty-items.csv"))
    with_consent = [r for r in rows_of("items.csv") if r["知情同意书正文 consent text"]]
    assert loaded["consent_text"] == len(with_consent)
    bound = sum(
        bool(r["钉钉用户ID DingTalk userid"]) + bool(r["企业微信用户ID WeCom userid"])
        for r in staff
    )
    assert loaded["external_identity"] == bound

    async with services.db.session() as session:
        grades = dict(
            (
                await session.execute(
                    sa.text("SELECT grade, count(*) FROM surgery_procedure GROUP BY grade")
                )
            ).all()
        )
        heads = (
            await session.execute(
                sa.text(
                    'SELECT d.code, u.username FROM department d JOIN "user" u ON u.id = d.head_user_id'
                )
            )
        ).all()
        superiors = (
            await session.execute(
                sa.text(
                    'SELECT u.username, s.username FROM "user" u JOIN "user" s ON s.id = u.superior_id'
                )
            )
        ).all()
    assert set(grades) == {1, 2, 3, 4}
    file_heads = {
        (r["科室编码 department code"], r["用户名 username"])
        for r in staff
        if r["科主任 department head"] == "是"
    }
    assert set(heads) == file_heads and len(heads) == 30
    # Half the departments list their head after the staff who report to the head.
    assert set(superiors) == {
        (r["用户名 username"], r["上级用户名 superior"]) for r in staff if r["上级用户名 superior"]
    }

    verify = await bedside(services, "audit", "verify")
    assert verify.returncode == 0, verify.stderr

    # The same files again (departments now from the CSV twin of the workbook).
    for kind in ORDER:
        again = await bedside(services, "import", kind, str(FIXTURES / f"{kind}.csv"))
        assert again.returncode == 0, again.stderr
        assert "created 0, updated 0," in again.stdout, (kind, again.stdout)
    assert await counts(services) == loaded

    # An imported doctor signs in with the initial password, and is asked to change it.
    doctor = next(
        r
        for r in staff
        if r["角色 roles"] == "外科医生"
        and r["初始密码 initial password"]
        and not r["科主任 department head"]
    )
    client = await GraphQLClient(http).as_user(
        doctor["用户名 username"], doctor["初始密码 initial password"]
    )
    me = (
        await client.data(
            "{ me { username displayName roles mustChangePassword department { name } } }"
        )
    )["me"]
    departments = {r["科室编码 code"]: r["科室名称 name"] for r in rows_of("departments.csv")}
    assert me == {
        "username": doctor["用户名 username"],
        "displayName": doctor["姓名 name"],
        "roles": ["surgeon"],
        "mustChangePassword": True,
        "department": {"name": departments[doctor["科室编码 department code"]]},
    }
    # Until then the token does nothing else.
    blocked = await client.error("{ myTasks { id } }")
    assert error_code(blocked) == "PASSWORD_CHANGE_REQUIRED"
    changed = await client.data(
        'mutation { changePassword(currentPassword: "Bedside@2026", newPassword: "Xinmima#2027") { token } }'
    )
    fresh = GraphQLClient(http, changed["changePassword"]["token"])
    assert (await fresh.data("{ me { mustChangePassword } }"))["me"]["mustChangePassword"] is False
    assert (await fresh.data("{ myTasks { id } }"))["myTasks"] == []

    # Someone without an initial password signs in through DingTalk / WeCom only.
    platform_only = next(r for r in staff if not r["初始密码 initial password"])
    refused = await GraphQLClient(http).error(
        'mutation($u: String!) { login(username: $u, password: "Bedside@2026") { token } }',
        {"u": platform_only["用户名 username"]},
    )
    assert error_code(refused) == "UNAUTHENTICATED"


async def test_bad_rows_name_row_and_column_and_write_nothing(
    services: Services, tmp_path: Path
) -> None:
    assert (
        await bedside(services, "import", "departments", fixture("departments"))
    ).returncode == 0
    before = await counts(services)
    staff = rows_of("staff.csv")[:40]
    staff[4]["角色 roles"] = "院长助理"  # file row 6
    staff[9]["手机号 mobile"] = "1380013"  # file row 11
    staff[20]["用户名 username"] = staff[3]["用户名 username"]  # file row 22, same as row 5
    staff[30]["姓名 name"] = "王\x00伟"  # file row 32: a NUL pasted in from another system
    bad = await bedside(services, "import", "staff", str(write_csv(tmp_path / "staff.csv", staff)))
    assert bad.returncode == 1
    assert "第6行 row 6 「角色」(roles): 未知角色 / unknown role: 院长助理" in bad.stderr
    assert "第11行 row 11 「手机号」(mobile)" in bad.stderr
    assert "第22行 row 22 「用户名」(username): 与第5行重复 / same as row 5" in bad.stderr
    assert "第32行 row 32 「姓名」(name): 含有不可见的控制字符" in bad.stderr
    assert "nothing written" in bad.stderr
    assert await counts(services) == before

    # Rows that read well but that the hospital's data refuses: checked in the same pass,
    # still all or nothing.
    staff = rows_of("staff.csv")[:40]
    staff[7]["科室编码 department code"] = "NOPE"  # row 9
    staff[30]["上级用户名 superior"] = "nobody.here"  # row 32
    refused = await bedside(
        services, "import", "staff", str(write_csv(tmp_path / "staff2.csv", staff))
    )
    assert refused.returncode == 1
    assert "第9行 row 9 「科室编码」(department code): 科室不存在" in refused.stderr
    assert (
        "第32行 row 32 「上级用户名」(superior): 上级用户不存在 / no such user: nobody.here"
        in refused.stderr
    )
    assert await counts(services) == before

    schedules = rows_of("schedules.csv")[:3]
    schedules[1]["结束时间 end"] = "07:00"  # before its start: the schedules domain says no
    await bedside(services, "import", "staff", fixture("staff"))
    await bedside(services, "import", "items", fixture("items"))
    before = await counts(services)
    late = await bedside(
        services, "import", "schedules", str(write_csv(tmp_path / "s.csv", schedules))
    )
    assert late.returncode == 1
    assert "第3行 row 3 「结束时间」(end): 结束时间须晚于开始时间" in late.stderr
    assert await counts(services) == before


async def test_dry_run_shows_each_row_and_writes_nothing(services: Services) -> None:
    before = await counts(services)
    dry = await bedside(services, "import", "departments", fixture("departments"), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    lines = [line for line in dry.stdout.splitlines() if line.startswith("第")]
    assert len(lines) == 30
    assert lines[0].split("\t")[1:] == ["新增 create", "GS 普外科"]
    assert "created 30, updated 0, unchanged 0" in dry.stdout
    assert "dry run, nothing written" in dry.stdout
    assert await counts(services) == before


async def test_a_changed_row_updates_as_a_new_version_where_the_area_versions(
    services: Services, tmp_path: Path
) -> None:
    await load_hospital(services)
    penalty = rows_of("penalty-items.csv")
    penalty[3]["分值 points"] = "5"
    penalty[3]["生效日期 effective from"] = "2027-01-01"
    changed = write_csv(tmp_path / "penalty.csv", penalty)
    before = await counts(services)
    dry = await bedside(services, "import", "penalty-items", str(changed), "--dry-run")
    assert "第5行 row 5\t更新 update\t" in dry.stdout and "version 2" in dry.stdout
    assert await counts(services) == before
    done = await bedside(services, "import", "penalty-items", str(changed))
    assert "created 0, updated 1, unchanged 29" in done.stdout, done.stdout
    code = penalty[3]["条目编码 code"]
    async with services.db.session() as session:
        versions = (
            await session.execute(
                sa.text(
                    "SELECT version, points, effective_from::text, effective_to::text FROM penalty_item WHERE code = :c ORDER BY version"
                ),
                {"c": code},
            )
        ).all()
    assert versions == [(1, 3.0, "2026-01-01", "2027-01-01"), (2, 5.0, "2027-01-01", None)]

    # A new version must start after the last one: a later change dated earlier is refused.
    penalty[3]["分值 points"] = "6"
    penalty[3]["生效日期 effective from"] = "2026-06-01"
    early = await bedside(
        services, "import", "penalty-items", str(write_csv(tmp_path / "p2.csv", penalty))
    )
    assert early.returncode == 1
    assert "第5行 row 5 「生效日期」(effective from)" in early.stderr

    # A changed consent text is a new version; the item's other columns update in place.
    items = rows_of("items.csv")
    items[0]["知情同意书正文 consent text"] += "治疗中如有不适请立即告知治疗师。"
    items[0]["单价(元) price (yuan)"] = "48.00"
    updated = await bedside(services, "import", "items", str(write_csv(tmp_path / "i.csv", items)))
    assert "created 0, updated 1, unchanged 39" in updated.stdout, updated.stdout
    async with services.db.session() as session:
        texts = (
            await session.execute(
                sa.text(
                    "SELECT c.version, c.is_current, i.price_cents FROM consent_text c JOIN treatment_item i ON i.id = c.item_id WHERE i.code = :c ORDER BY c.version"
                ),
                {"c": items[0]["项目编码 code"]},
            )
        ).all()
    assert texts == [(1, False, 4800), (2, True, 4800)]

    # A catalog entry regraded and a schedule with more places change in place, recorded.
    catalog = rows_of("catalog.csv")
    catalog[0]["手术级别 grade"] = "二级"
    schedules = rows_of("schedules.csv")
    schedules[0]["容量 capacity"] = "4"
    for kind, rows in (("catalog", catalog), ("schedules", schedules)):
        done = await bedside(
            services, "import", kind, str(write_csv(tmp_path / f"{kind}.csv", rows))
        )
        assert f"created 0, updated 1, unchanged {len(rows) - 1}" in done.stdout, done.stdout
    async with services.db.session() as session:
        grade = (
            await session.execute(
                sa.text("SELECT grade FROM surgery_procedure WHERE code = :c"),
                {"c": catalog[0]["手术编码 ICD-9-CM-3 code"]},
            )
        ).scalar_one()
        history = (
            await session.execute(
                sa.text(
                    "SELECT stream, action, data FROM audit_event WHERE action = 'updated' AND (stream LIKE 'procedure:%' OR stream LIKE 'schedule:%') ORDER BY id"
                )
            )
        ).all()
    assert grade == 2
    assert [(h.stream.split(":")[0], h.action) for h in history] == [
        ("procedure", "updated"),
        ("schedule", "updated"),
    ]
    assert history[0].data["changes"]["grade"][1] == 2
    assert history[1].data["changes"] == {
        "capacity": [int(rows_of("schedules.csv")[0]["容量 capacity"]), 4]
    }
    verify = await bedside(services, "audit", "verify")
    assert verify.returncode == 0, verify.stderr


async def test_template_has_chinese_headers_and_an_example_row_that_imports(
    services: Services, tmp_path: Path
) -> None:
    for kind in ORDER:
        target = tmp_path / f"{kind}.xlsx"
        done = await bedside(services, "import", "template", kind, "--output", str(target))
        assert done.returncode == 0, done.stderr
        sheet = load_workbook(target).worksheets[0]
        header, example = ([c.value for c in row] for row in sheet.iter_rows(max_row=2))
        assert all(any("\u4e00" <= ch <= "\u9fff" for ch in str(h)) for h in header)
        assert any(example)
    staff_header = [
        c.value
        for c in next(load_workbook(tmp_path / "staff.xlsx").worksheets[0].iter_rows(max_row=1))
    ]
    assert "*用户名 username" in staff_header and "初始密码 initial password" in staff_header
    before = await counts(services)
    dry = await bedside(
        services, "import", "departments", str(tmp_path / "departments.xlsx"), "--dry-run"
    )
    assert dry.returncode == 0 and "created 1" in dry.stdout, dry.stderr
    unknown = await bedside(services, "import", "template", "wards")
    assert unknown.returncode == 2 and "unknown kind" in unknown.stderr
    assert await counts(services) == before


async def test_unlock_ends_a_lockout_now_and_is_recorded(
    services: Services, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    staff = rows_of("staff.csv")[:5]
    await bedside(services, "import", "departments", fixture("departments"))
    await bedside(services, "import", "staff", str(write_csv(tmp_path / "few.csv", staff)))
    person = next(r for r in staff if r["初始密码 initial password"])
    anonymous = GraphQLClient(http)
    login = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }"
    for _ in range(services.settings.login_max_failures):
        await anonymous.error(login, {"u": person["用户名 username"], "p": "wrong-Password1"})
    locked = await anonymous.error(
        login, {"u": person["用户名 username"], "p": person["初始密码 initial password"]}
    )
    assert error_code(locked) == "ACCOUNT_LOCKED"

    done = await bedside(services, "users", "unlock", person["用户名 username"])
    assert done.returncode == 0, done.stderr
    assert "unlocked" in done.stdout
    body = await anonymous.execute(
        login, {"u": person["用户名 username"], "p": person["初始密码 initial password"]}
    )
    assert not body.get("errors"), body
    async with services.db.session() as session:
        actions = (
            (
                await session.execute(
                    sa.text(
                        "SELECT e.action FROM audit_event e JOIN \"user\" u ON e.stream = 'user:' || u.id WHERE u.username = :u ORDER BY e.seq"
                    ),
                    {"u": person["用户名 username"]},
                )
            )
            .scalars()
            .all()
        )
    assert actions == ["created", "unlocked"]

    missing = await bedside(services, "users", "unlock", "no.such.user")
    assert missing.returncode == 1 and "用户不存在" in missing.stderr


@pytest.mark.parametrize("empty_file", [False, True])
async def test_a_command_that_finds_no_schema_says_so_and_exits_3(
    services: Services, tmp_path: Path, empty_file: bool
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if empty_file:
        (elsewhere / "bedside.db").write_bytes(b"")
    env = {k: v for k, v in cli_env(services).items() if k != "BEDSIDE_DATABASE_URL"}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "api.cli", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        cwd=elsewhere,
    )
    assert result.returncode == 3
    assert "数据库中没有 Bedside 的表结构" in result.stderr
    assert "no Bedside schema" in result.stderr and "bedside migrate" in result.stderr
    # The default path is relative: the operator is told where it points.
    assert f"resolves to {elsewhere.resolve() / 'bedside.db'}" in result.stderr
    assert sorted(p.name for p in elsewhere.iterdir()) == (["bedside.db"] if empty_file else [])
    if empty_file:
        assert (elsewhere / "bedside.db").stat().st_size == 0
    shutil.rmtree(elsewhere)


async def test_an_empty_postgresql_database_is_no_schema_too(services: Services) -> None:
    if not services.db.is_postgres:
        pytest.skip("PostgreSQL only")
    url = sa.engine.make_url(services.settings.database_url)
    name = f"{url.database}_empty"
    admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        env = {
            **cli_env(services),
            "BEDSIDE_DATABASE_URL": url.set(database=name).render_as_string(hide_password=False),
        }
        for command in (["audit", "verify"], ["users", "unlock", "admin"]):
            result = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "api.cli", *command],
                env=env,
                capture_output=True,
                text=True,
            )
            assert result.returncode == 3, (command, result.stderr)
            assert "no Bedside schema" in result.stderr and "warning" not in result.stderr
    finally:
        async with admin.connect() as conn:
            await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()
