"""Accounts."""

from __future__ import annotations

import sys

import click

from api.cli.context import build_services, cli_actor, db_settings, main, open_services, run


@main.group()
def users() -> None:
    """Accounts."""


@users.command("unlock")
@click.argument("username")
def users_unlock(username: str) -> None:
    """End USERNAME's lockout now (recorded in the user's history)."""
    from api.domain import people
    from api.errors import DomainError

    services = build_services(db_settings(schema=True))

    async def go() -> bool:
        async with open_services(services), services.db.transaction() as session:
            user = await people.user_by_username(session, username)
            return await people.unlock_user(session, user, actor=cli_actor())

    try:
        was_locked = run(go())
    except DomainError as exc:
        click.echo(exc.message, err=True)
        sys.exit(1)
    if was_locked:
        click.echo(f"已解除锁定 / unlocked: {username}")
    else:
        click.echo(f"账户未被锁定，已清零失败次数 / {username} was not locked; failure count reset")
