"""The periodic work of every area, listed once for the assemblers (`api/app.py`,
`api/cli/worker.py`) to install into the notification sweep (worker or in-process runner)."""

from __future__ import annotations

from datetime import datetime, timedelta

from api.domain.approvals import escalate_overdue
from api.domain.treatments.appointments import mark_no_shows
from api.domain.treatments.schedules import generate_slots
from api.services import Services
from notifications.delivery.scheduled import register_periodic

# Slot generation is idempotent but not free; once an hour per process is plenty.
SLOT_WINDOW_EVERY = timedelta(hours=1)
_last_slot_window: dict[int, datetime] = {}


async def approvals_deadlines(services: Services, now: datetime) -> dict[str, object]:
    async with services.db.transaction() as session:
        return {"escalated": await escalate_overdue(session, now=now)}


async def treatments_calendar(services: Services, now: datetime) -> dict[str, object]:
    done: dict[str, object] = {}
    last = _last_slot_window.get(id(services))
    if last is None or now - last >= SLOT_WINDOW_EVERY:
        async with services.db.transaction() as session:
            done["slots created"] = await generate_slots(
                session,
                start=now.astimezone(services.settings.tz).date(),
                days=14,
                tz=services.settings.tz,
            )
        _last_slot_window[id(services)] = now
    async with services.db.transaction() as session:
        done["no-shows marked"] = len(await mark_no_shows(session, now=now))
    return done


async def bots_catch_up(services: Services, now: datetime) -> dict[str, object]:
    from bots.sweep import sweep

    return dict(await sweep(services))


async def uploads_expiry(services: Services, now: datetime) -> dict[str, object]:
    from sync.attachments import expire_partial_uploads

    return await expire_partial_uploads(services, now)


def install(services: Services) -> Services:
    register_periodic(services, "approvals", approvals_deadlines)
    register_periodic(services, "treatments", treatments_calendar)
    register_periodic(services, "bots", bots_catch_up)
    register_periodic(services, "uploads", uploads_expiry)
    return services
