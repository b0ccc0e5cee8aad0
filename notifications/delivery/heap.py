"""Keeping a long-running delivery process's garbage collector out of the way."""

from __future__ import annotations

import gc


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
