"""The arq worker: notifications, reminders and scheduled jobs."""

from __future__ import annotations

import sys

import click

from api.cli.context import configure_logging, main, run
from api.settings import load_settings


@main.command()
def worker() -> None:
    """arq worker: notifications, reminders and scheduled jobs (needs BEDSIDE_REDIS_URL)."""
    import signal

    # A SIGTERM while the worker is still starting (imports, connecting) is a clean stop
    # too: arq installs its own handler only once it runs, and before that the default
    # action would end the process with -15 (a supervisor reads that as a crash).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from api import periodic
    from notifications.delivery.worker import run_worker

    settings = load_settings()
    if not settings.redis_url:
        click.echo(
            "BEDSIDE_REDIS_URL is not set; `bedside serve` delivers in process / 未配置 Redis",
            err=True,
        )
        sys.exit(2)
    configure_logging(settings)
    run(run_worker(settings, prepare=periodic.install))
