"""`bedside directory sync dingtalk|wecom` against the platform simulator: members matched
to imported staff by the id already bound, by mobile or by job number; ids bound;
strangers reported; leavers deactivated; a directory that lost most people refused."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from api.services import Services
from tests.imports.test_cli_imports import bedside, cli_env, counts, fixture, rows_of, write_csv
from tests.simulators.platforms import DINGTALK, WECOM, PlatformSimulator


def platform_env(services: Services, sim: PlatformSimulator) -> dict[str, str]:
    return {
        **cli_env(services),
        "BEDSIDE_DINGTALK_APP_KEY": DINGTALK["app_key"],
        "BEDSIDE_DINGTALK_APP_SECRET": DINGTALK["app_secret"],
        "BEDSIDE_DINGTALK_AGENT_ID": DINGTALK["agent_id"],
        "BEDSIDE_DINGTALK_API_BASE": sim.url,
        "BEDSIDE_WECOM_CORP_ID": WECOM["corp_id"],
        "BEDSIDE_WECOM_SECRET": WECOM["secret"],
        "BEDSIDE_WECOM_AGENT_ID": WECOM["agent_id"],
        "BEDSIDE_WECOM_API_BASE": sim.url,
    }


async def sync(
    services: Services, sim: PlatformSimulator, *args: str
) -> subprocess.CompletedProcess[str]:
    env = platform_env(services, sim)
    env.pop("BEDSIDE_REDIS_URL", None)  # platform tokens kept in process
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "api.cli", "directory", "sync", *args],
        env=env,
        capture_output=True,
        text=True,
    )


async def load_staff(services: Services, tmp_path: Path, column: str) -> list[dict[str, str]]:
    """40 people of the fixture hospital; the first ten not yet bound on the platform."""
    staff = rows_of("staff.csv")[:40]
    for row in staff[:10]:
        row[column] = ""
    assert (
        await bedside(services, "import", "departments", fixture("departments"))
    ).returncode == 0
    done = await bedside(services, "import", "staff", str(write_csv(tmp_path / "staff.csv", staff)))
    assert done.returncode == 0, done.stderr
    return staff


async def identities(services: Services, provider: str) -> dict[str, str]:
    async with services.db.session() as session:
        rows = await session.execute(
            sa.text(
                'SELECT u.username, i.external_id FROM external_identity i JOIN "user" u ON u.id = i.user_id WHERE i.provider = :p'
            ),
            {"p": provider},
        )
        return dict(rows.all())


async def active(services: Services, username: str) -> tuple[bool, int]:
    async with services.db.session() as session:
        return (
            await session.execute(
                sa.text('SELECT is_active, token_version FROM "user" WHERE username = :u'),
                {"u": username},
            )
        ).one()


U, NAME, MOBILE, JOB, DT, WX = (
    "用户名 username",
    "姓名 name",
    "手机号 mobile",
    "工号 job number",
    "钉钉用户ID DingTalk userid",
    "企业微信用户ID WeCom userid",
)


async def test_dingtalk_directory_binds_by_mobile_or_job_number_and_deactivates_leavers(
    services: Services, platform_sim: PlatformSimulator, tmp_path: Path
) -> None:
    staff = await load_staff(services, tmp_path, DT)
    bound_before = await identities(services, "dingtalk")
    already = [r for r in staff[10:] if r[DT]]
    leaver = already[-1]
    departments = [
        {"id": 2, "name": "医务处", "parent_id": 1},
        {"id": 3, "name": "质量管理科", "parent_id": 1},
    ]
    members = [
        # bound already (all but the leaver), spread over two departments and pages of 100
        *(
            {
                "userid": r[DT],
                "name": r[NAME],
                "mobile": r[MOBILE],
                "job_number": r[JOB],
                "departments": [2 if i % 2 else 3],
            }
            for i, r in enumerate(already[:-1])
        ),
        # new on the platform, found by mobile
        *(
            {"userid": f"dtnew{i}", "name": r[NAME], "mobile": r[MOBILE], "departments": [2]}
            for i, r in enumerate(staff[:5])
        ),
        # found by job number (the directory has no mobile for them)
        *(
            {"userid": f"dtjob{i}", "name": r[NAME], "job_number": r[JOB], "departments": [3]}
            for i, r in enumerate(staff[5:7])
        ),
        # nobody at the hospital has this mobile or job number
        {
            "userid": "dtstranger",
            "name": "外院进修",
            "mobile": "13900000001",
            "job_number": "X9",
            "departments": [1],
        },
    ]
    platform_sim.set_directory("dingtalk", departments, members)

    before = await counts(services)
    dry = await sync(services, platform_sim, "dingtalk", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "bound 7, unmatched 1, deactivated 1" in dry.stdout
    assert (
        await counts(services) == before and await identities(services, "dingtalk") == bound_before
    )

    done = await sync(services, platform_sim, "dingtalk")
    assert done.returncode == 0, done.stderr
    assert f"already bound {len(already) - 1}, bound 7, unmatched 1, deactivated 1" in done.stdout
    assert "dtstranger\t外院进修" in done.stdout
    now_bound = await identities(services, "dingtalk")
    expected = {
        **bound_before,
        **{r[U]: f"dtnew{i}" for i, r in enumerate(staff[:5])},
        **{r[U]: f"dtjob{i}" for i, r in enumerate(staff[5:7])},
    }
    assert now_bound == expected
    is_active, tokens = await active(services, leaver[U])
    assert (is_active, tokens) == (False, 1)
    async with services.db.session() as session:
        history = (
            (
                await session.execute(
                    sa.text(
                        "SELECT e.action FROM audit_event e JOIN \"user\" u ON e.stream = 'user:' || u.id WHERE u.username = :u ORDER BY e.seq"
                    ),
                    {"u": leaver[U]},
                )
            )
            .scalars()
            .all()
        )
    assert history == ["created", "deactivated"]

    again = await sync(services, platform_sim, "dingtalk")
    assert f"already bound {len(already) + 6}, bound 0, unmatched 1, deactivated 0" in again.stdout

    # A directory the app suddenly sees almost nobody in is a scope problem, not a walkout.
    platform_sim.set_directory("dingtalk", departments, members[:2])
    before = await counts(services)
    refused = await sync(services, platform_sim, "dingtalk")
    assert refused.returncode == 1 and "check the app's directory scope" in refused.stderr
    assert await counts(services) == before


async def test_wecom_directory_matches_by_the_job_number_attribute_and_status_left(
    services: Services, platform_sim: PlatformSimulator, tmp_path: Path
) -> None:
    staff = await load_staff(services, tmp_path, WX)
    already = [r for r in staff[10:] if r[WX]]
    assert len(already) >= 5
    members = [
        *({"userid": r[WX], "name": r[NAME], "departments": [2], "status": 1} for r in already[1:]),
        # left the hospital: still listed, status 5 (退出企业)
        {"userid": already[0][WX], "name": already[0][NAME], "departments": [2], "status": 5},
        # apps created after mid-2022 see no mobile: the 工号 attribute matches
        {
            "userid": "wxjob0",
            "name": staff[0][NAME],
            "job_number": staff[0][JOB],
            "departments": [2],
            "status": 1,
        },
    ]
    platform_sim.set_directory("wecom", [{"id": 2, "name": "医务处", "parent_id": 1}], members)
    done = await sync(services, platform_sim, "wecom")
    assert done.returncode == 0, done.stderr
    assert f"already bound {len(already) - 1}, bound 1, unmatched 0, deactivated 1" in done.stdout
    assert (await identities(services, "wecom"))[staff[0][U]] == "wxjob0"
    assert (await active(services, already[0][U]))[0] is False


async def test_a_leavers_pending_tasks_go_to_the_head_of_their_department(
    gql, platform_sim: PlatformSimulator, demo: Services
) -> None:
    services = demo
    medical_affairs = await gql.as_user("ma.zhao")
    started = await medical_affairs.data(
        """mutation { grantPrivilege(input: {surgeonUsername: "dr.li", grade: 4,
             validFrom: "2027-01-01T00:00:00+08:00", reason: "四级手术授权申请"}) { id } }"""
    )
    instance = started["grantPrivilege"]["id"]
    chief = await gql.as_user("chief.wang")
    mine = "{ myTasks { id instance { id } } }"
    (department_task,) = [
        t for t in (await chief.data(mine))["myTasks"] if t["instance"]["id"] == instance
    ]
    await chief.data(
        "mutation($id: ID!) { decideTask(taskId: $id, decision: APPROVE) { id } }",
        {"id": department_task["id"]},
    )
    party = await gql.as_user("party.liu")
    (branch_task,) = [
        t for t in (await party.data(mine))["myTasks"] if t["instance"]["id"] == instance
    ]

    staff = ["admin", "vp.chen", "ma.zhao", "chief.wang", "dr.li", "dr.qian", "chief.he", "pt.sun"]
    platform_sim.set_directory(
        "dingtalk",
        [{"id": 2, "name": "普外科", "parent_id": 1}],
        [{"userid": u, "name": u, "departments": [2]} for u in staff],  # party.liu left
    )
    done = await sync(services, platform_sim, "dingtalk")
    assert done.returncode == 0, done.stderr
    assert f"转交 handed over\ttask {branch_task['id']}\tparty.liu -> chief.wang" in done.stdout
    assert "停用 deactivated\tparty.liu" in done.stdout

    now_mine = [t for t in (await chief.data(mine))["myTasks"] if t["instance"]["id"] == instance]
    assert len(now_mine) == 1 and now_mine[0]["id"] != branch_task["id"]
    history = (
        await chief.data(
            "query($id: ID!) { approvalInstance(id: $id) { history { action actor { username } } } }",
            {"id": instance},
        )
    )["approvalInstance"]["history"]
    assert {"action": "transferred", "actor": {"username": "party.liu"}} in history
    # Signed out everywhere: the leaver's token no longer works.
    refused = await party.execute("{ me { username } }")
    assert refused.get("errors")
