"""Recording: a dispatch's state after a send's outcome, with the retry backoff."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from notifications.delivery.rows import Outcome, SweepReport


def backoff(attempts: int) -> timedelta:
    """How long after its `attempts`-th failed try a dispatch is tried again."""
    return timedelta(seconds=30 * 2 ** (attempts - 1))


def attempt_row(dispatch_id: int, now: datetime, result: str, detail: str | None) -> dict[str, Any]:
    """One row of `notice_attempt`."""
    return {
        "dispatch_id": dispatch_id,
        "at": now,
        "ok": result == "sent",
        "result": result,
        "detail": detail,
    }


def apply(
    outcome: Outcome,
    now: datetime,
    *,
    max_attempts: int,
    report: SweepReport,
    attempts: list[dict[str, Any]],
    gone: list[Any],
) -> bool:
    """The dispatch's state after this outcome; True when it failed for good (a
    fallback to the person's next channel is due)."""
    result, dispatch = outcome.result, outcome.dispatch
    assert result is not None
    detail = (result.detail or "")[:500] or None  # the column's width
    if result.status not in ("skipped", "rate_limited"):
        dispatch.attempts += 1
    attempts.append(attempt_row(dispatch.id, now, result.status, detail))
    if result.gone_addresses and dispatch.channel == "webpush":
        gone.extend(result.gone_addresses)
    if result.status == "sent":
        dispatch.status, dispatch.sent_at, dispatch.retry_at = "sent", now, None
        dispatch.external_id = result.external_id
        dispatch.last_error = None
        if outcome.dropped:
            dispatch.possibly_dropped, dispatch.drop_reason = True, outcome.dropped[:200]
        report.sent += 1
    elif result.status == "skipped":
        dispatch.status, dispatch.retry_at, dispatch.last_error = "skipped", None, detail
        report.skipped += 1
    elif result.status == "rate_limited":
        # a per-recipient limit (outcome) or the platform's own state (result): later,
        # not counted as a failed attempt
        dispatch.status, dispatch.retry_at, dispatch.last_error = (
            "retry",
            outcome.retry_at or result.retry_at or now + timedelta(minutes=10),
            detail,
        )
        report.rate_limited += 1
    elif result.status == "retry" and dispatch.attempts < max_attempts:
        dispatch.status, dispatch.last_error = "retry", detail
        dispatch.retry_at = now + backoff(dispatch.attempts)
        report.retried += 1
    else:
        dispatch.status = "gone" if result.status == "gone" else "failed"
        dispatch.retry_at, dispatch.last_error = None, detail
        report.failed += 1
        return True
    return False
