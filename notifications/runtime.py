"""What the app's lifespan starts: the arq kicker (fleet) or the in-process runner."""

from __future__ import annotations

import gc
from typing import Any

from api.services import Services


async def start_delivery(services: Services) -> Any:
    if services.settings.redis_url:
        from notifications.worker import ArqKicker

        handle: Any = ArqKicker(services.settings.redis_url)
    else:
        from notifications.runner import InProcessRunner
        from notifications.setup import build_dispatcher

        handle = InProcessRunner(
            build_dispatcher(services), interval=services.settings.notify_sweep_seconds
        )
    await handle.start()
    services.extras["notification_delivery"] = handle
    return handle


def settle_heap() -> None:
    """Move what lives as long as the process (modules, mappers, settings, services) out
    of the garbage collector's way. A sweep allocates tens of thousands of short-lived
    objects; without this each full collection it triggers walks the whole heap again
    (a quarter of a 10,000-reminder sweep's time). Called when delivery starts; only the
    first call in a process does anything."""
    if _settled:
        return
    _settled.append(True)
    gc.collect()
    gc.freeze()


_settled: list[bool] = []
