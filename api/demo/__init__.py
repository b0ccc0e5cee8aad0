"""`bedside seed-demo`: the demo hospital of CONTRACT.md, loaded idempotently.

Each area contributes a module in this package with `ORDER: int` and
`async def seed(session, services) -> dict`; they run by ORDER (people first, at 0),
inside one transaction. Adding an area's demo data is adding a module.
"""

from __future__ import annotations

import pkgutil
from importlib import import_module

from sqlalchemy.ext.asyncio import AsyncSession

from api.services import Services


def parts() -> list:  # type: ignore[type-arg]
    modules = [import_module(f"{__name__}.{m.name}") for m in pkgutil.iter_modules(__path__)]
    return sorted(
        (m for m in modules if hasattr(m, "seed")),
        key=lambda m: (getattr(m, "ORDER", 50), m.__name__),
    )


async def seed_demo(session: AsyncSession, services: Services) -> dict[str, object]:
    summary: dict[str, object] = {}
    for module in parts():
        for key, value in (await module.seed(session, services)).items():
            summary[f"{module.__name__.rsplit('.', 1)[-1]}.{key}"] = value
    return summary
