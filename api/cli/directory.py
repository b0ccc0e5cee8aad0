"""The hospital's directory on DingTalk or WeCom."""

from __future__ import annotations

import sys

import click

from api.cli.context import build_services, cli_actor, db_settings, main, open_services, run


@main.group()
def directory() -> None:
    """The hospital's directory on DingTalk or WeCom."""


@directory.command("sync")
@click.argument("platform", type=click.Choice(["dingtalk", "wecom"]))
@click.option("--dry-run", is_flag=True, help="show what would change, write nothing")
@click.option(
    "--allow-many-leavers",
    is_flag=True,
    help="deactivate even when more than a fifth of the bound people are missing",
)
def directory_sync(platform: str, dry_run: bool, allow_many_leavers: bool) -> None:
    """Match the platform's members to staff (bound id, mobile, job number), bind their
    ids, report who matched nobody, deactivate leavers (their tasks to the department head)."""
    from api.domain.directory import DirectoryEntry, sync_directory
    from api.errors import DomainError
    from integrations.platforms import PlatformError, get_platforms

    services = build_services(db_settings(schema=True))
    platforms = get_platforms(services)  # closed with the services
    client = platforms.dingtalk if platform == "dingtalk" else platforms.wecom
    if not client.configured:
        click.echo(
            f"{platform} 未配置 / not configured: set BEDSIDE_{platform.upper()}_* first", err=True
        )
        sys.exit(2)

    async def go():  # type: ignore[no-untyped-def]
        async with open_services(services):
            departments, members = await client.directory()
            entries = [
                DirectoryEntry(
                    external_id=m["userid"],
                    name=m["name"],
                    mobile=m["mobile"],
                    job_number=m["job_number"],
                    left=m["left"],
                )
                for m in members
            ]
            async with services.db.sessionmaker() as session:
                report = await sync_directory(
                    session,
                    platform,
                    entries,
                    actor=cli_actor(),
                    allow_many_leavers=allow_many_leavers,
                )
                if dry_run:
                    await session.rollback()
                else:
                    await session.commit()
            return len(departments), len(members), report

    try:
        departments, members, report = run(go())
    except (DomainError, PlatformError) as exc:
        click.echo(getattr(exc, "message", str(exc)), err=True)
        sys.exit(1)
    click.echo(f"通讯录 / directory: {departments} departments, {members} members")
    for username, external_id, how in report.bound:
        click.echo(f"绑定 bound\t{username}\t{external_id}\t(by {how})")
    for entry, why in report.unmatched:
        click.echo(
            f"未匹配 unmatched\t{entry.external_id}\t{entry.name}\t{entry.mobile or '-'}\t"
            f"{entry.job_number or '-'}\t{why}"
        )
    for task_id, leaver, head in report.handed_over:
        click.echo(f"转交 handed over\ttask {task_id}\t{leaver} -> {head}")
    for task_id, leaver in report.not_handed_over:
        click.echo(f"未能转交 not handed over\ttask {task_id}\t{leaver}", err=True)
    for username in report.deactivated:
        click.echo(f"停用 deactivated\t{username}")
    click.echo(
        f"已绑定 {report.already_bound}，新绑定 {len(report.bound)}，未匹配 {len(report.unmatched)}，"
        f"停用 {len(report.deactivated)} / already bound {report.already_bound}, "
        f"bound {len(report.bound)}, unmatched {len(report.unmatched)}, "
        f"deactivated {len(report.deactivated)}"
    )
    if dry_run:
        click.echo("试运行，未写入任何数据 / dry run, nothing written")
