"""`bedside seed-demo`: the demo hospital of CONTRACT.md, loaded idempotently.

Each area contributes a module with `async def seed(session, services) -> dict`; they run
in the order listed, inside one transaction.
"""

from __future__ import annotations

from importlib import import_module

from sqlalchemy.ext.asyncio import AsyncSession

from api.services import Services

PARTS = [
    "api.demo.people",
]


async def seed_demo(session: AsyncSession, services: Services) -> dict[str, object]:
    summary: dict[str, object] = {}
    for name in PARTS:
        module = import_module(name)
        for key, value in (await module.seed(session, services)).items():
            summary[f"{name.rsplit('.', 1)[-1]}.{key}"] = value
    return summary
