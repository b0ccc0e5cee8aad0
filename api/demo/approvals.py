"""Publish the repository's approval definitions (idempotent: same body, same row)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from api.domain.approvals import publish_definitions
from api.services import Services

ORDER = 10


async def seed(session: AsyncSession, services: Services) -> dict[str, object]:
    rows = await publish_definitions(session)
    return {"definitions": sorted(f"{r.key}.v{r.version}" for r in rows)}
