"""HL7 v2 over MLLP with the hospital information system (HIS)."""

from __future__ import annotations

import click

from api.cli.context import build_services, configure_logging, main, open_services, run
from api.settings import load_settings


@main.group()
def hl7() -> None:
    """HL7 v2 over MLLP with the hospital information system (HIS)."""


@hl7.command("listen")
@click.option(
    "--host",
    default=None,
    help="address to listen on; default BEDSIDE_HL7_HOST (127.0.0.1); 0.0.0.0 for the HIS",
)
@click.option("--port", default=None, type=int, help="default BEDSIDE_HL7_PORT (2575)")
def hl7_listen(host: str | None, port: int | None) -> None:
    """MLLP listener for HIS messages; also sends our appointments to the HIS."""
    from integrations.hl7.config import HL7Config
    from integrations.hl7.listener import run_listener

    settings = load_settings()
    configure_logging(settings)
    config = HL7Config.load()
    services = build_services(settings)
    click.echo(
        f"HL7 MLLP listening on {host or config.settings.host}:{port or config.settings.port} / HL7 监听中"
    )

    async def go() -> None:
        async with open_services(services):
            await run_listener(services, config, host=host, port=port)

    try:
        run(go())
    except KeyboardInterrupt:
        pass
