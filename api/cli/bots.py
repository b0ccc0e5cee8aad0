"""DingTalk / WeCom cards and the Official Account: the card sweep, the tap worker, the menu."""

from __future__ import annotations

import click

from api.cli.context import build_services, configure_logging, main, open_services, run
from api.settings import load_settings


@main.group()
def bots() -> None:
    """DingTalk / WeCom cards and the Official Account."""


@bots.command("sweep")
def bots_sweep() -> None:
    """Decide stored taps left undecided, send and update cards, prune old nonces."""
    from bots.sweep import sweep

    services = build_services()

    async def go() -> dict[str, int]:
        async with open_services(services):
            return await sweep(services)

    for key, value in run(go()).items():
        click.echo(f"{key}: {value}")


@bots.command("work")
def bots_work() -> None:
    """Decide stored card taps as they arrive (with BEDSIDE_BOTS_DECIDE_IN_PROCESS=false)."""
    from bots import inbox

    settings = load_settings()
    configure_logging(settings)
    run(inbox.work(build_services(settings)))


@bots.command("oa-menu")
def bots_oa_menu() -> None:
    """Publish the Official Account menu (预约治疗 / 我的预约 / 随访)."""
    from bots.wechat_oa import publish_menu

    run(publish_menu(build_services()))
    click.echo("menu published / 菜单已发布")
