"""The hash chain finds edits, insertions and deletions; the CLI reports them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import sqlalchemy as sa

from api.audit import append_event, verify_chains
from api.auth import SYSTEM_ACTOR
from api.services import Services


async def _three_events(services: Services) -> None:
    async with services.db.transaction() as session:
        for action in ("submitted", "approved", "completed"):
            await append_event(
                session, "demo:1", action, actor=SYSTEM_ACTOR, data={"note": f"{action} 同意"}
            )


async def _breaks(services: Services) -> list[str]:
    async with services.db.session() as session:
        return [str(b) for b in await verify_chains(session)]


async def test_intact_chain_verifies(services: Services) -> None:
    await _three_events(services)
    assert await _breaks(services) == []


async def test_edited_event_is_found(services: Services) -> None:
    await _three_events(services)
    async with services.db.transaction() as session:
        await session.execute(sa.text("UPDATE audit_event SET action = 'rejected' WHERE seq = 2"))
    breaks = await _breaks(services)
    assert len(breaks) == 1 and "seq 2" in breaks[0] and "edited" in breaks[0]


async def test_deleted_middle_event_is_found(services: Services) -> None:
    await _three_events(services)
    async with services.db.transaction() as session:
        await session.execute(sa.text("DELETE FROM audit_event WHERE seq = 2"))
    breaks = await _breaks(services)
    assert breaks and "expected seq 2" in breaks[0]


async def test_deleted_tail_is_found(services: Services) -> None:
    await _three_events(services)
    async with services.db.transaction() as session:
        await session.execute(sa.text("DELETE FROM audit_event WHERE seq = 3"))
    breaks = await _breaks(services)
    assert breaks and "head records seq 3" in breaks[0]


async def test_cli_verify_exit_codes(services: Services) -> None:
    await _three_events(services)
    env = {**os.environ, "BEDSIDE_DATABASE_URL": services.settings.database_url}
    ok = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "api.cli", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    async with services.db.transaction() as session:
        await session.execute(
            sa.text('UPDATE audit_event SET data = \'{"note": "forged"}\' WHERE seq = 1')
        )
    bad = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "api.cli", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1
    assert "demo:1" in bad.stderr and "seq 1" in bad.stderr
