"""Jobs that run with every sweep, in the worker and in the in-process runner alike."""

from __future__ import annotations

import importlib
import logging
from datetime import datetime

from api.services import Services

log = logging.getLogger("bedside.notifications")


async def run_scheduled(services: Services, now: datetime) -> dict[str, object]:
    """Other areas' periodic work (the approval engine's overdue escalation)."""
    done: dict[str, object] = {}
    try:
        approvals = importlib.import_module("api.domain.approvals")
    except ImportError:
        return done
    escalate = getattr(approvals, "escalate_overdue", None)
    if escalate is not None:
        async with services.db.transaction() as session:
            done["approvals_escalated"] = await escalate(session, now=now)
    return done
