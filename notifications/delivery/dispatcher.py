"""The delivery engine: one `sweep(now)` does everything that is due.

1. Recover: dispatches still `sending` past their lease (the sender died between send
   and mark-sent) are sent again under the *same* key where the channel honours it, and
   marked `unknown` (never re-sent) where it does not; due retries are sent again.
2. Plan (one transaction, rows locked with SKIP LOCKED so several workers share the
   work): every notice whose `due_at` has come is looked at *now* — read or cancelled
   ones stop, quiet hours defer, otherwise the first delivery or the next reminder is
   decided, or, when the reminders are used up, the superior is told. Dispatches are
   recorded (`sending`) and committed before anything leaves the building.
3. Send the batch with bounded concurrency, then record every attempt and result in a
   second transaction.

Set-based throughout: the due notices come in one locking SELECT of plain rows, their
new schedules go out in one UPDATE, the dispatches, their links and their attempts in
one INSERT each and the outcomes in one UPDATE (`notifications.delivery.bulk`), whatever the
batch size. Per notice only cheap Python remains (the decision, the working-hour
arithmetic, the text). ORM objects and per-row queries are left to the rare paths
(escalation, fallback to the next channel).

Time comes in as `now`; nothing here reads the clock, so tests drive it.

The steps live beside this module: `policy_step` (what a due notice needs), `digests`,
`routing`, `limits`, `sending`, `recording` (outcomes and backoff), `fallback` and
`recovery`; `rows` holds the rows they pass around and builds a new dispatch row.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from api.models.notifications import PushSubscription
from api.services import Services
from notifications.delivery import bulk, digests, policy_step, recording, recovery, sending
from notifications.delivery.channels import INAPP, Channel
from notifications.delivery.fallback import fallback
from notifications.delivery.routing import Router, load_prefs
from notifications.delivery.rows import (
    ATTEMPTS,
    DELIVERIES,
    DISPATCHES,
    DUE_COLUMNS,
    NOTICES,
    RECORDED,
    SCHEDULE,
    Dispatch,
    DueNotice,
    Outcome,
    Planned,
    SweepReport,
    delivery_row,
    dispatch_row,
    insert_dispatches,
)
from notifications.delivery.texts import Item, digest_text, dispatch_key, notice_link, single_text
from notifications.outbox.policies import Policy, PolicySet, default_policies

__all__ = ["Dispatcher", "SweepReport"]


class Dispatcher:
    def __init__(
        self,
        services: Services,
        channels: dict[str, Channel],
        *,
        policies: PolicySet | None = None,
        batch_size: int = 500,
        lease: timedelta = timedelta(minutes=5),
        max_attempts: int = 5,
        concurrency: int = 50,
    ) -> None:
        self.services = services
        self.db = services.db
        self.channels = channels
        self.router = Router(channels)
        self.policies = policies or default_policies()
        self.hours = self.policies.hours(services.settings.tz)
        self.tz = services.settings.tz
        self.batch_size = batch_size
        self.lease = lease
        self.max_attempts = max_attempts
        # Messages in flight at once per batch: the channel (and the platform behind it)
        # sees at most this many concurrent requests from one sweep.
        self.concurrency = concurrency
        self._policy_of: dict[tuple[str | None, int | None, str], Policy] = {}

    async def aclose(self) -> None:
        """Close the channels' connections (those that keep any)."""
        for channel in self.channels.values():
            close = getattr(channel, "aclose", None)
            if close is not None:
                await close()

    # ------------------------------------------------------------------ the sweep
    async def sweep(self, now: datetime) -> SweepReport:
        report = SweepReport()
        await self._recover(now, report)
        while True:
            escalations = report.escalations
            outcomes, examined = await self._plan(now, report)
            await self._deliver(outcomes, now, report)
            # An escalation written just now is itself due now: go round once more.
            if examined < self.batch_size and report.escalations == escalations:
                break
        return report

    # ------------------------------------------------------------------ planning
    async def _plan(self, now: datetime, report: SweepReport) -> tuple[list[Outcome], int]:
        """Claim one batch of due notices, decide each, and commit their new schedules
        with the dispatches that carry them; returns what to send (or what was decided
        without sending: a per-recipient limit)."""
        async with self.db.transaction() as session:
            rows = (
                await session.execute(
                    sa.select(*DUE_COLUMNS)
                    .where(NOTICES.c.due_at <= now)
                    .order_by(NOTICES.c.due_at)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return [], 0
            notices = [DueNotice(*row) for row in rows]
            report.notices_examined += len(notices)
            prefs = await load_prefs(session, sorted({n.recipient_id for n in notices}))
            pending: dict[int, list[Item]] = defaultdict(list)
            policies: dict[int, Policy] = {}
            to_escalate: list[DueNotice] = []
            quiet: dict[tuple[str, str], datetime | None] = {}
            for notice in notices:
                policy = self._policy(notice)
                item = policy_step.decide(
                    notice,
                    policy,
                    prefs.get(notice.recipient_id),
                    now,
                    hours=self.hours,
                    tz=self.tz,
                    report=report,
                    quiet=quiet,
                    to_escalate=to_escalate,
                )
                if item is not None:
                    pending[notice.recipient_id].append(item)
                    policies[notice.id] = policy
            for notice in to_escalate:
                await policy_step.escalate(session, notice, now, tz=self.tz, report=report)
            await bulk.update_rows(
                session,
                NOTICES,
                [{"id": n.id, **{c: getattr(n, c) for c in SCHEDULE}} for n in notices],
            )

            deliveries: list[dict[str, Any]] = [
                delivery_row(i.notice.id, 0, INAPP, None, now)
                for items in pending.values()
                for i in items
                if i.reminder_no == 0
            ]
            first = await self.router.first_channels(session, list(pending), prefs)
            planned: list[Planned] = []
            for recipient_id, items in pending.items():
                if recipient_id not in first:
                    continue  # reachable in the in-app inbox only
                channel, addresses = first[recipient_id]
                # Where the platform's card is the first message, no text goes with it.
                sent_by_card = [
                    i.reminder_no == 0 and channel in policies[i.notice.id].first_delivery_by_card
                    for i in items
                ]
                report.first_by_card += sum(sent_by_card)
                items = [i for i, by_card in zip(items, sent_by_card, strict=True) if not by_card]
                for group in digests.groups(items, prefs.get(recipient_id), policies):
                    planned.append(
                        Planned(
                            self._new_dispatch(recipient_id, channel, group, now), group, addresses
                        )
                    )
            dispatches = await insert_dispatches(session, [p.dispatch for p in planned])
            deliveries += [
                delivery_row(i.notice.id, i.reminder_no, d.channel, d.id, now)
                for p, d in zip(planned, dispatches, strict=True)
                for i in p.items
            ]
            await bulk.insert_rows(session, DELIVERIES, deliveries)
            # Read and cancel were checked just now under the notices' locks: no re-check.
            outcomes = await sending.prepare(
                session,
                self.router,
                dispatches,
                now,
                addresses={d.id: p.addresses for p, d in zip(planned, dispatches, strict=True)},
            )
            return outcomes, len(notices)

    def _policy(self, notice: Any) -> Policy:
        key = (notice.policy_key, notice.policy_version, notice.kind)
        policy = self._policy_of.get(key)
        if policy is None:
            policy = self.policies.get(
                notice.policy_key, notice.policy_version
            ) or self.policies.for_kind(notice.kind)
            self._policy_of[key] = policy
        return policy

    def _new_dispatch(
        self, recipient_id: int, channel: str, items: list[Item], now: datetime
    ) -> dict[str, Any]:
        """The row of a new dispatch (inserted with its batch): one notice's text, or a
        digest of several."""
        settings = self.services.settings
        if len(items) == 1:
            title, body = single_text(items[0], self.tz)
            url = notice_link(settings.public_url, settings.effective_secret_key, items[0].notice)
        else:
            title, body = digest_text(items, self.tz)
            url = f"{settings.public_url.rstrip('/')}/notices"
        return dispatch_row(
            recipient_id=recipient_id,
            channel=channel,
            idempotency_key=dispatch_key(items, channel),
            title=title,
            body=body,
            url=url,
            critical=any(i.notice.critical for i in items),
            now=now,
            lease=self.lease,
        )

    # ------------------------------------------------------------------ sending
    async def _deliver(self, outcomes: list[Outcome], now: datetime, report: SweepReport) -> None:
        """Send what is ready with bounded concurrency, then record every outcome of the
        batch in one transaction (one commit, not one per message; a crash in between is
        what the recovery sweep is for). Fallbacks to a next channel go the same way."""
        while outcomes:
            await sending.send(outcomes, self.channels, concurrency=self.concurrency)
            fallbacks = await self._record(outcomes, now, report)
            if not fallbacks:
                return
            async with self.db.session() as session:
                outcomes = await sending.prepare(
                    session, self.router, fallbacks, now, check_reads=True
                )

    async def _record(
        self, outcomes: list[Outcome], now: datetime, report: SweepReport
    ) -> list[Dispatch]:
        """Record the outcomes of one batch: every dispatch's new state in one UPDATE and
        every attempt in one INSERT. Returns fallback dispatches to send next."""
        attempts: list[dict[str, Any]] = []
        failed: list[Dispatch] = []
        gone: list[Any] = []
        recorded: list[Dispatch] = []
        for outcome in outcomes:
            if outcome.result is None:
                continue
            if recording.apply(
                outcome,
                now,
                max_attempts=self.max_attempts,
                report=report,
                attempts=attempts,
                gone=gone,
            ):
                failed.append(outcome.dispatch)
            recorded.append(outcome.dispatch)
        if not recorded:
            return []
        fallbacks: list[Dispatch] = []
        async with self.db.transaction() as session:
            await bulk.update_rows(
                session,
                DISPATCHES,
                [{"id": d.id, **{c: getattr(d, c) for c in RECORDED}} for d in recorded],
            )
            await bulk.insert_rows(session, ATTEMPTS, attempts)
            if gone:
                await session.execute(
                    sa.delete(PushSubscription).where(PushSubscription.endpoint.in_(gone))
                )
            for dispatch in failed:
                next_one = await fallback(
                    session, dispatch, now, router=self.router, lease=self.lease
                )
                if next_one is not None:
                    fallbacks.append(next_one)
        return fallbacks

    # ------------------------------------------------------------------ recovery
    async def _recover(self, now: datetime, report: SweepReport) -> None:
        async with self.db.transaction() as session:
            resend = await recovery.claim_stalled(
                session,
                self.channels,
                now,
                batch_size=self.batch_size,
                lease=self.lease,
                report=report,
            )
        if resend:
            async with self.db.session() as session:
                outcomes = await sending.prepare(
                    session, self.router, resend, now, check_reads=True
                )
            await self._deliver(outcomes, now, report)
