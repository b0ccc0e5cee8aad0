"""A real MLLP listener on a free loopback port, over the demo hospital."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api.services import Services
from integrations.hl7.config import HL7Config, HL7Mapping, HL7Settings
from integrations.hl7.listener import build_server
from integrations.hl7.mllp import MLLPClient, MLLPServer

MAPPING_FILE = Path(__file__).parent / "mapping.yaml"


@pytest.fixture
def hl7_config() -> HL7Config:
    settings = HL7Settings(
        port=0, mapping_file=MAPPING_FILE, max_frame_bytes=64 * 1024, idle_timeout_seconds=30
    )
    return HL7Config(settings=settings, mapping=HL7Mapping.load(MAPPING_FILE))


@pytest.fixture
async def listener(demo: Services, hl7_config: HL7Config) -> AsyncIterator[MLLPServer]:
    server = build_server(demo, hl7_config, host="127.0.0.1", port=0)
    async with server:
        yield server


@pytest.fixture
async def his(listener: MLLPServer) -> AsyncIterator[MLLPClient]:
    """The HIS side: one kept-alive connection to the listener."""
    client = MLLPClient("127.0.0.1", listener.port, timeout=10)
    async with client:
        yield client
