"""Wake the delivery side after a commit that wrote notices.

`outbox.enqueue` marks the session; after its transaction commits, every registered
waker runs (the in-process runner sets an event, the API's arq pool enqueues a sweep).
A waker that fails (Redis down) only costs latency: the periodic sweep finds the rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger("bedside.notifications")

_wakers: list[Callable[[], None]] = []
FLAG = "bedside_notices_written"


def register(waker: Callable[[], None]) -> Callable[[], None]:
    _wakers.append(waker)
    return waker


def unregister(waker: Callable[[], None]) -> None:
    if waker in _wakers:
        _wakers.remove(waker)


def mark(sync_session: Session) -> None:
    sync_session.info[FLAG] = True


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if not session.info.pop(FLAG, False):
        return
    for waker in list(_wakers):
        try:
            waker()
        except Exception:  # noqa: BLE001 - waking is best effort; the sweep is the guarantee
            log.warning("notification waker failed", exc_info=True)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(FLAG, None)
