"""What the app's lifespan starts: the arq kicker (fleet) or the in-process runner.

Imports go one way: this module knows the runner and the worker; neither knows it."""

from __future__ import annotations

from typing import Any

from api.services import Services


async def start_delivery(services: Services) -> Any:
    if services.settings.redis_url:
        from notifications.delivery.worker import ArqKicker

        handle: Any = ArqKicker(services.settings.redis_url)
    else:
        from notifications.delivery.runner import InProcessRunner
        from notifications.delivery.setup import build_dispatcher

        handle = InProcessRunner(
            build_dispatcher(services), interval=services.settings.notify_sweep_seconds
        )
    await handle.start()
    services.extras["notification_delivery"] = handle
    return handle
