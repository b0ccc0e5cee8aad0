"""`bedside hl7 listen`: the MLLP server and, beside it, the sender of our outbound messages."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from api.services import Services
from integrations.hl7.config import HL7Config
from integrations.hl7.inbound import InboundProcessor
from integrations.hl7.mllp import MLLPServer

log = logging.getLogger("bedside.hl7")


def build_server(
    services: Services, config: HL7Config, *, host: str | None = None, port: int | None = None
) -> MLLPServer:
    processor = InboundProcessor(services, config)
    settings = config.settings
    return MLLPServer(
        processor.handle_frame,
        host=host or settings.host,
        port=settings.port if port is None else port,
        max_frame_bytes=settings.max_frame_bytes,
        idle_timeout=settings.idle_timeout_seconds,
    )


async def run_listener(
    services: Services,
    config: HL7Config,
    *,
    host: str | None = None,
    port: int | None = None,
    send_interval: float = 5.0,
) -> None:
    server = await build_server(services, config, host=host, port=port).start()
    sender: asyncio.Task[None] | None = None
    try:
        from integrations.hl7.outbound import run_sender
    except ImportError:  # pragma: no cover - outbound needs the treatments area
        run_sender = None  # type: ignore[assignment]
    if run_sender is not None:
        sender = asyncio.create_task(run_sender(services, config, interval=send_interval))
    try:
        await server.serve_forever()
    finally:
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        await server.close()
