"""Periodic jobs that run with every sweep, in the worker and in the in-process runner.

Notifications know nothing of the other areas: the assemblers (`api/app.py` for the
in-process runner, `api/cli/worker.py` for `bedside worker`) install the jobs through
`api.periodic.install(services)`, and each job is a plain `async def job(services, now) -> dict`.
Jobs belong to the process's Services, not to a module global, so a process (or a test)
that did not install them runs none.
A job that fails is logged and does not stop the sweep or the other jobs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from api.services import Services

log = logging.getLogger("bedside.notifications")

PeriodicJob = Callable[[Services, datetime], Awaitable[dict[str, object]]]


def register_periodic(services: Services, name: str, job: PeriodicJob) -> None:
    services.extras.setdefault("periodic_jobs", {})[name] = job


async def run_scheduled(services: Services, now: datetime) -> dict[str, object]:
    done: dict[str, object] = {}
    jobs: dict[str, PeriodicJob] = services.extras.get("periodic_jobs", {})
    for name, job in list(jobs.items()):
        try:
            for key, value in (await job(services, now)).items():
                done[f"{name}.{key}"] = value
        except Exception:  # noqa: BLE001 - one failing job must not stop the others
            log.exception("periodic job %s failed", name)
    return done
