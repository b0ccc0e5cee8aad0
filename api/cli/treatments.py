"""Treatment management jobs: the periodic sweep (cron or the worker)."""

from __future__ import annotations

import click

from api.cli.context import build_services, db_settings, main, open_services, run


@main.group()
def treatments() -> None:
    """Treatment management jobs."""


@treatments.command("sweep")
@click.option("--days", default=14, show_default=True, help="rolling window of slots")
def treatments_sweep(days: int) -> None:
    """Generate the slots of the rolling window and mark no-shows (safe to repeat)."""
    from datetime import datetime

    from api.domain.treatments.appointments import mark_no_shows
    from api.domain.treatments.schedules import generate_slots

    settings = db_settings(schema=True)
    services = build_services(settings)

    async def go() -> tuple[int, int]:
        async with open_services(services):
            async with services.db.transaction() as session:
                created = await generate_slots(
                    session, start=datetime.now(settings.tz).date(), days=days, tz=settings.tz
                )
                marked = await mark_no_shows(session)
            return created, len(marked)

    created, marked = run(go())
    click.echo(
        f"slots created: {created}; no-shows marked: {marked} / 新增时段 {created}，标记爽约 {marked}"
    )
