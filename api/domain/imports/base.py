"""What every import kind shares: the outcome of a row and the context it runs in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor, PasswordHashing
from api.settings import Settings

CREATE, UPDATE, UNCHANGED = "create", "update", "unchanged"


@dataclass
class Outcome:
    action: str  # create | update | unchanged
    what: str  # e.g. "GS 普外科"
    changes: list[str] = field(default_factory=list)


@dataclass
class ImportContext:
    session: AsyncSession
    actor: Actor
    settings: Settings
    hashing: PasswordHashing | None
    # What a kind loads once (the rows already there) and plans across rows.
    cache: dict[str, Any] = field(default_factory=dict)
