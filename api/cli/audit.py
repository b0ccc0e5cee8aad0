"""The hash-chained history."""

from __future__ import annotations

import sys

import click

from api.cli.context import db_settings, main, run


@main.group()
def audit() -> None:
    """The hash-chained history."""


@audit.command("verify")
def audit_verify() -> None:
    """Check every hash chain; exit 1 naming the first broken event, 3 when there is no schema."""
    # The areas register the hash chains that must exist (one per approval …).
    from api.assembly import install_domain

    install_domain()
    from api.audit import verify_chains
    from api.db import Database

    settings = db_settings(schema=True)

    async def go() -> list:  # type: ignore[type-arg]
        db = Database(settings)
        try:
            async with db.session() as session:
                return await verify_chains(session)
        finally:
            await db.dispose()

    breaks = run(go())
    if breaks:
        click.echo(f"BROKEN: {breaks[0]}", err=True)
        for extra in breaks[1:]:
            click.echo(f"also broken: {extra}", err=True)
        sys.exit(1)
    click.echo("all hash chains intact / 所有哈希链完整")
