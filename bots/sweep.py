"""The periodic catch-up (worker cron or `bedside bots sweep`, every minute or so): taps
a stopped process stored but did not decide, cards not yet sent or updated, old nonces."""

from __future__ import annotations

from api.services import Services
from bots import cards, inbox
from bots.guard import prune_nonces


async def sweep(services: Services) -> dict[str, int]:
    taps = await inbox.sweep_taps(services)
    summary = await cards.sweep(services)
    return {"taps decided": taps, **summary, "nonces pruned": await prune_nonces(services)}
