"""The process settings from inside a command, and the hospital's time zone.

The database puts the settings on every session (`session.info["settings"]`), so a domain
action that needs one (a data folder, the local day of a moment) reads it from there;
the time zone comes from `BEDSIDE_TIMEZONE` and nowhere else.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from api.settings import Settings, load_settings


def settings_of(session: AsyncSession) -> Settings:
    settings = session.info.get("settings")
    return settings if isinstance(settings, Settings) else load_settings()


def local_day(session: AsyncSession, moment: datetime, settings: Settings | None = None) -> date:
    """The hospital's calendar day of `moment` (an aware time)."""
    return moment.astimezone((settings or settings_of(session)).tz).date()
