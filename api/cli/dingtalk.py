"""DingTalk: Stream mode and the approval card's callback (HTTP mode)."""

from __future__ import annotations

import sys

import click

from api.cli.context import build_services, configure_logging, main, open_services, run
from api.settings import load_settings


@main.command("dingtalk-stream")
def dingtalk_stream_command() -> None:
    """Receive DingTalk card taps over Stream mode (for hospitals with no public URL)."""
    from bots import dingtalk_stream

    settings = load_settings()
    configure_logging(settings)
    run(dingtalk_stream.run(build_services(settings)))


@main.group()
def dingtalk() -> None:
    """DingTalk: the approval card's callback (HTTP mode)."""


@dingtalk.command("register-card-callback")
@click.option(
    "--url", default=None, help="default BEDSIDE_PUBLIC_URL + /bots/dingtalk/card-callback"
)
@click.option("--force", is_flag=True, help="replace a registration that points elsewhere")
def dingtalk_register_card_callback(url: str | None, force: bool) -> None:
    """Register the card callback URL for BEDSIDE_DINGTALK_CARD_CALLBACK_ROUTE_KEY, signed
    with BEDSIDE_DINGTALK_CARD_CALLBACK_SECRET (注册卡片回调地址; HTTP mode only)."""
    from bots.dingtalk import register_card_callback
    from integrations.platforms import PlatformError

    services = build_services()

    async def go() -> tuple[bool, dict]:  # type: ignore[type-arg]
        async with open_services(services):
            return await register_card_callback(services, callback_url=url, force=force)

    try:
        done, record = run(go())
    except PlatformError as exc:
        click.echo(f"注册失败 / registration failed: {exc}", err=True)
        sys.exit(1)
    if not done:
        click.echo(
            f"路由 {record['callbackRouteKey']} 已指向 {record['callbackUrl']}；确认后加 --force 覆盖 / "
            f"route key already points to {record['callbackUrl']}: run again with --force to replace it",
            err=True,
        )
        sys.exit(3)
    click.echo(f"已注册 / registered: {record['callbackRouteKey']} -> {record['callbackUrl']}")
    if services.settings.dingtalk_use_stream:
        click.echo(
            "注意：BEDSIDE_DINGTALK_USE_STREAM 仍为 true，卡片仍走 Stream 模式 / note: cards use "
            "Stream mode until BEDSIDE_DINGTALK_USE_STREAM=false",
            err=True,
        )
