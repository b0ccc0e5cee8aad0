"""Going live: the hospital's own data from .xlsx or .csv."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from api.cli.context import build_services, cli_actor, db_settings, main, open_services, run


@main.group("import")
def import_group() -> None:
    """Load the hospital's own data from .xlsx or .csv (templates: `bedside import template KIND`).

    Order: departments, staff, catalog, items, schedules, penalty-items.
    """


def _print_report(report, *, dry_run: bool) -> None:  # type: ignore[no-untyped-def]
    labels = {"create": "新增 create", "update": "更新 update", "unchanged": "未变 unchanged"}
    if dry_run:
        for row in report.rows:
            detail = f" ({', '.join(row.changes)})" if row.changes else ""
            click.echo(f"第{row.row}行 row {row.row}\t{labels[row.action]}\t{row.what}{detail}")
    for error in report.errors:
        click.echo(str(error), err=True)
    if report.errors:
        click.echo(
            f"{len(report.errors)} 处错误，未写入任何数据 / {len(report.errors)} errors, nothing written",
            err=True,
        )
        return
    click.echo(report.summary)
    click.echo(
        "试运行，未写入任何数据 / dry run, nothing written" if dry_run else "已导入 / imported"
    )


def _import_command(kind: str):  # type: ignore[no-untyped-def]
    @click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
    @click.option("--dry-run", is_flag=True, help="show what would change, write nothing")
    def command(file: Path, dry_run: bool) -> None:
        from api.domain.imports import run_import

        settings = db_settings(schema=True)
        services = build_services(settings)

        def progress(done: int, total: int) -> None:
            if total >= 500:
                click.echo(f"… {done}/{total}", err=True)

        async def go():  # type: ignore[no-untyped-def]
            async with open_services(services), services.db.sessionmaker() as session:
                report = await run_import(
                    session,
                    kind,
                    file,
                    actor=cli_actor(),
                    settings=settings,
                    hashing=services.hashing,
                    progress=progress,
                )
                if report.ok and not dry_run:
                    await session.commit()
                else:
                    await session.rollback()
                return report

        report = run(go())
        _print_report(report, dry_run=dry_run)
        if not report.ok:
            sys.exit(1)

    from api.domain.imports.kinds import TITLES

    command.__doc__ = (
        f"Import {TITLES[kind]} from FILE (.xlsx or .csv); nothing written when any row fails."
    )
    return import_group.command(kind)(command)


def _register_imports() -> None:
    from api.domain.imports.kinds import ORDER

    for kind in ORDER:
        _import_command(kind)


_register_imports()


@import_group.command("template")
@click.argument("kind")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="default: bedside-import-KIND.xlsx in the current folder",
)
def import_template(kind: str, output: Path | None) -> None:
    """Write the .xlsx template of KIND (Chinese headers, an example row, notes)."""
    from api.domain.imports import FileError, template

    target = output or Path(f"bedside-import-{kind}.xlsx")
    try:
        template(kind, target)
    except FileError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    click.echo(f"模板已写入 / template written: {target}")
