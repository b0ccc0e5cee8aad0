"""The delivery engine: one `sweep(now)` does everything that is due.

1. Recover: dispatches still `sending` past their lease (the sender died between send
   and mark-sent) are sent again under the *same* key where the channel honours it, and
   marked `unknown` (never re-sent) where it does not; due retries are sent again.
2. Plan (one transaction, rows locked with SKIP LOCKED so several workers share the
   work): every notice whose `due_at` has come is looked at *now* — read or cancelled
   ones stop, quiet hours defer, otherwise the first delivery or the next reminder is
   decided, or, when the reminders are used up, the superior is told. Dispatches are
   recorded (`sending`) and committed before anything leaves the building.
3. Send each dispatch, then record the attempt and its result in a second transaction.

Time comes in as `now`; nothing here reads the clock, so tests drive it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.domain.people import superior_of
from api.models.notices import Notice
from api.models.notifications import (
    NoticeAttempt,
    NoticeDelivery,
    NoticeDispatch,
    NotificationPreference,
    PushSubscription,
)
from api.models.people import User
from api.services import Services
from notifications import outbox
from notifications.channels import DEFAULT_ORDER, INAPP, Channel, Message, SendResult
from notifications.policies import Policy, PolicySet, default_policies
from notifications.quiet import quiet_until
from notifications.texts import Item, digest_text, dispatch_key, notice_link, rekey, single_text

log = logging.getLogger("bedside.notifications")

# Several pending items for one person in one sweep become one message from this many on.
DIGEST_MIN_ITEMS = 3
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
# Recipient ids per IN (...) list: well under every driver's bind-parameter limit.
IN_CHUNK = 900
# The columns of a dispatch an outcome changes (written back in one executemany).
RECORDED = ("status", "attempts", "retry_at", "sent_at", "external_id", "last_error", "possibly_dropped", "drop_reason")


@dataclass
class LimitState:
    """Per (channel, recipient): [(count, oldest sent_at)] for each configured window;
    and (channel, recipient, title, body) sent within the same-content window."""

    sent: dict[tuple[str, int], list[tuple[int, datetime | None]]] = field(default_factory=dict)
    same_content: set[tuple[str, int, str, str]] = field(default_factory=set)


async def _insert_returning_ids(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    """One multi-row INSERT (batched by the driver); the new ids in the rows' order."""
    if not rows:
        return []
    table = model.__table__
    result = await session.execute(sa.insert(table).returning(table.c.id, sort_by_parameter_order=True), rows)
    return [int(i) for i in result.scalars()]


@dataclass
class Outcome:
    dispatch_id: int
    result: SendResult | None
    message: Message | None = None
    dropped: str | None = None
    retry_at: datetime | None = None


@dataclass
class SweepReport:
    notices_examined: int = 0
    first_deliveries: int = 0
    reminders: int = 0
    escalations: int = 0
    stopped: int = 0
    deferred_quiet: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    rate_limited: int = 0
    recovered: int = 0
    unknown: int = 0
    escalated_notice_ids: list[int] = field(default_factory=list)


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
        self.policies = policies or default_policies()
        self.hours = self.policies.hours(services.settings.tz)
        self.tz = services.settings.tz
        self.batch_size = batch_size
        self.lease = lease
        self.max_attempts = max_attempts
        self.semaphore = asyncio.Semaphore(concurrency)

    # ------------------------------------------------------------------ the sweep
    async def sweep(self, now: datetime) -> SweepReport:
        report = SweepReport()
        await self._recover(now, report)
        while True:
            escalations = report.escalations
            dispatch_ids, examined = await self._plan(now, report)
            await self._send_many(dispatch_ids, now, report)
            # An escalation written just now is itself due now: go round once more.
            if examined < self.batch_size and report.escalations == escalations:
                break
        return report

    # ------------------------------------------------------------------ planning
    async def _plan(self, now: datetime, report: SweepReport) -> tuple[list[int], int]:
        async with self.db.transaction() as session:
            notices = list(
                (
                    await session.execute(
                        sa.select(Notice)
                        .where(Notice.due_at <= now)
                        .order_by(Notice.due_at)
                        .limit(self.batch_size)
                        .with_for_update(skip_locked=True)
                    )
                ).scalars()
            )
            if not notices:
                return [], 0
            report.notices_examined += len(notices)
            recipients = {n.recipient_id for n in notices}
            prefs = {
                p.user_id: p
                for p in (
                    await session.execute(sa.select(NotificationPreference).where(NotificationPreference.user_id.in_(recipients)))
                ).scalars()
            }
            pending: dict[int, list[Item]] = defaultdict(list)
            policies: dict[int, Policy] = {}
            for notice in notices:
                item = await self._decide(session, notice, prefs.get(notice.recipient_id), now, report)
                if item is not None:
                    pending[notice.recipient_id].append(item)
                    policies[notice.id] = self._policy(notice)  # type: ignore[index]
            planned: list[tuple[dict[str, Any], list[Item]]] = []
            deliveries: list[dict[str, Any]] = []
            for recipient_id, items in pending.items():
                for item in items:
                    if item.reminder_no == 0:
                        deliveries.append({"notice_id": item.notice.id, "reminder_no": 0, "channel": INAPP, "dispatch_id": None, "created_at": now})
                route = await self._route(session, recipient_id, prefs.get(recipient_id))
                if not route:
                    continue  # reachable in the in-app inbox only
                for group in self._groups(items, prefs.get(recipient_id), policies):
                    planned.append((self._new_dispatch(recipient_id, route[0], group, now), group))
            # Set-based: the notices' schedule changes in one flush (executemany), the
            # dispatches in one multi-row INSERT ... RETURNING id (ids in parameter order),
            # their links in one more. No ORM object per row: at 10,000 rows that is seconds.
            await session.flush()
            dispatch_ids = await _insert_returning_ids(session, NoticeDispatch, [d for d, _ in planned])
            deliveries += [
                {"notice_id": i.notice.id, "reminder_no": i.reminder_no, "channel": d["channel"], "dispatch_id": dispatch_id, "created_at": now}
                for (d, group), dispatch_id in zip(planned, dispatch_ids, strict=True)
                for i in group
            ]
            if deliveries:
                await session.execute(sa.insert(NoticeDelivery.__table__), deliveries)  # type: ignore[attr-defined]
            return dispatch_ids, len(notices)

    def _policy(self, notice: Notice) -> Policy:
        return self.policies.get(notice.policy_key, notice.policy_version) or self.policies.for_kind(notice.kind)

    async def _decide(
        self, session: AsyncSession, notice: Notice, pref: NotificationPreference | None, now: datetime, report: SweepReport
    ) -> Item | None:
        """What this due notice needs now; updates its schedule. None: nothing to send."""
        if notice.read_at is not None or notice.cancelled_at is not None:
            notice.due_at = None
            report.stopped += 1
            return None
        policy = self._policy(notice)
        if policy.respect_quiet_hours and not notice.critical and pref is not None:
            until = quiet_until(pref.quiet_start, pref.quiet_end, now, self.tz)
            if until is not None:
                notice.due_at = until
                report.deferred_quiet += 1
                return None
        scheduled = notice.due_at or now
        if notice.delivered_at is None:
            notice.delivered_at = now
            notice.due_at = self.hours.add(now, policy.every_working_hours) if policy.max_reminders > 0 else None
            report.first_deliveries += 1
            return Item(notice, 0)
        if notice.reminders_sent < policy.max_reminders:
            notice.reminders_sent += 1
            notice.last_reminded_at = now
            more = notice.reminders_sent < policy.max_reminders or policy.escalate is not None
            notice.due_at = policy.next_due(self.hours, scheduled, now) if more else None
            report.reminders += 1
            return Item(notice, notice.reminders_sent)
        notice.due_at = None
        if policy.escalate == "superior" and notice.escalated_at is None:
            escalation = await self._escalate(session, notice, now)
            if escalation is not None:
                report.escalations += 1
                report.escalated_notice_ids.append(escalation.id)  # type: ignore[arg-type]
        return None

    async def _escalate(self, session: AsyncSession, notice: Notice, now: datetime) -> Notice | None:
        user = await session.get(User, notice.recipient_id)
        superior = await superior_of(session, user) if user else None
        notice.escalated_at = now
        if superior is None or superior.id is None:
            return None
        waited_since = (notice.delivered_at or notice.created_at).astimezone(self.tz).strftime("%m-%d %H:%M")
        escalation = await outbox.enqueue(
            session,
            recipient_id=superior.id,
            kind="notice.escalated",
            title=f"【升级提醒 / escalated】{user.display_name} 未阅：{notice.title}"[:200],  # type: ignore[union-attr]
            body=(
                f"{user.display_name} 自 {waited_since} 起未阅读此通知，已提醒 {notice.reminders_sent} 次。"  # type: ignore[union-attr]
                f" / not read since {waited_since} after {notice.reminders_sent} reminders."
            ),
            idempotency_key=f"escalate:{notice.id}",
            payload={"escalated_from": notice.id, "recipient_id": notice.recipient_id},
            subject_type=notice.subject_type,
            subject_id=notice.subject_id,
            critical=notice.critical,
            sender_id=notice.sender_id,
            policy="once",
            due_at=now,
        )
        notice.escalation_notice_id = escalation.id
        return escalation

    def _groups(self, items: list[Item], pref: NotificationPreference | None, policies: dict[int, Policy]) -> list[list[Item]]:
        """One message per item, or a digest of the non-critical ones when they pile up."""
        wants_digest = pref.digest if pref is not None else True
        digestible = [i for i in items if not i.notice.critical and policies[i.notice.id].digest]  # type: ignore[index]
        if not wants_digest or len(digestible) < DIGEST_MIN_ITEMS:
            return [[i] for i in items]
        rest = [[i] for i in items if i not in digestible]
        return [digestible, *rest]

    async def _route(self, session: AsyncSession, user_id: int, pref: NotificationPreference | None) -> list[str]:
        """The person's channels, in their order, that are configured and reach them."""
        order = list(pref.channels) if pref is not None and pref.channels else list(DEFAULT_ORDER)
        route = []
        for name in order:
            channel = self.channels.get(name)
            if channel is not None and await channel.addresses(session, user_id):
                route.append(name)
        return route

    def _new_dispatch(self, recipient_id: int, channel: str, items: list[Item], now: datetime) -> dict[str, Any]:
        """The row of a new dispatch (inserted with its batch)."""
        if len(items) == 1:
            title, body = single_text(items[0], self.tz)
            url = notice_link(self.services.settings.public_url, self.services.settings.effective_secret_key, items[0].notice)
        else:
            title, body = digest_text(items, self.tz)
            url = f"{self.services.settings.public_url.rstrip('/')}/notices"
        return {
            "recipient_id": recipient_id,
            "channel": channel,
            "idempotency_key": dispatch_key(items, channel),
            "title": title,
            "body": body,
            "url": url,
            "critical": any(i.notice.critical for i in items),
            "status": "sending",
            "attempts": 0,
            "retry_at": now + self.lease,
            "created_at": now,
            "possibly_dropped": False,
        }

    # ------------------------------------------------------------------ sending
    async def _send_many(self, dispatch_ids: list[int], now: datetime, report: SweepReport) -> None:
        """Send in chunks: read what each needs in one session, send concurrently, then
        record every outcome of the chunk in one transaction (one commit, not one per
        message; a crash in between is what the recovery sweep is for)."""
        for start in range(0, len(dispatch_ids), self.batch_size):
            chunk = dispatch_ids[start : start + self.batch_size]
            outcomes = await self._prepare(chunk, now)

            async def send(dispatch_id: int, message: Message, dropped: str | None) -> Outcome:
                async with self.semaphore:
                    channel = self.channels[message.channel]
                    try:
                        result = await channel.send(message)
                    except Exception as exc:  # noqa: BLE001 - a channel bug is a retry, never a lost notice
                        log.warning("channel %s raised", channel.name, exc_info=True)
                        result = SendResult("retry", detail=type(exc).__name__)
                    return Outcome(dispatch_id, result, dropped=dropped)

            ready = [o for o in outcomes if o.message is not None]
            done = [o for o in outcomes if o.message is None]
            done += await asyncio.gather(*(send(o.dispatch_id, o.message, o.dropped) for o in ready))  # type: ignore[arg-type]
            fallbacks = await self._record(done, now, report)
            if fallbacks:
                await self._send_many(fallbacks, now, report)

    async def _prepare(self, dispatch_ids: list[int], now: datetime) -> list[Outcome]:
        """For each dispatch: a message to send, or the outcome decided without sending."""
        outcomes: list[Outcome] = []
        table = NoticeDispatch.__table__  # type: ignore[attr-defined]
        async with self.db.session() as session:
            dispatches = list(
                (await session.execute(sa.select(table).where(table.c.id.in_(dispatch_ids), table.c.status.in_(("sending", "retry"))))).all()
            )
            states: dict[int, list[Any]] = defaultdict(list)
            for row in (
                await session.execute(
                    sa.select(NoticeDelivery.dispatch_id, NoticeDelivery.reminder_no, Notice.read_at, Notice.cancelled_at)
                    .join(Notice, Notice.id == NoticeDelivery.notice_id)
                    .where(NoticeDelivery.dispatch_id.in_(dispatch_ids))
                )
            ).all():
                states[row.dispatch_id].append(row)
            limits = await self._limit_state(session, dispatches, now)
            addresses_of: dict[tuple[str, int], list[Any]] = {}
            for dispatch in dispatches:
                channel = self.channels.get(dispatch.channel)
                items = states.get(dispatch.id, [])
                # Checked when it fires: a reminder about notices all read by now is not sent.
                all_closed = bool(items) and all(r.read_at is not None or r.cancelled_at is not None for r in items)
                if channel is None:
                    outcomes.append(Outcome(dispatch.id, SendResult("failed", detail="channel not configured")))
                    continue
                if all_closed and any(r.reminder_no > 0 for r in items):
                    outcomes.append(Outcome(dispatch.id, SendResult("skipped", detail="read before the reminder fired")))
                    continue
                where = (dispatch.channel, dispatch.recipient_id)
                if where not in addresses_of:
                    addresses_of[where] = await channel.addresses(session, dispatch.recipient_id)
                addresses = addresses_of[where]
                if not addresses:
                    outcomes.append(Outcome(dispatch.id, SendResult("gone", detail="recipient not reachable on this channel")))
                    continue
                defer_until, dropped = self._limits(dispatch, channel, limits, now)
                if defer_until is not None:
                    detail = f"per-recipient limit; deferred to {defer_until.isoformat()}"
                    outcomes.append(Outcome(dispatch.id, SendResult("rate_limited", detail=detail), retry_at=defer_until))
                    continue
                message = Message(
                    dispatch_id=dispatch.id,
                    idempotency_key=dispatch.idempotency_key,
                    recipient_id=dispatch.recipient_id,
                    addresses=list(addresses),
                    title=dispatch.title,
                    body=dispatch.body,
                    url=dispatch.url,
                    critical=dispatch.critical,
                    channel=dispatch.channel,
                )
                outcomes.append(Outcome(dispatch.id, None, message=message, dropped=dropped))
        return outcomes

    async def _limit_state(self, session: AsyncSession, dispatches: list[Any], now: datetime) -> LimitState:
        """What went out already to the chunk's recipients, per limited channel: a few
        grouped queries per chunk instead of several per message. Outcomes of the chunk
        are recorded after it is sent, so these numbers hold for the whole chunk."""
        state = LimitState()
        by_channel: dict[str, set[int]] = defaultdict(set)
        for d in dispatches:
            by_channel[d.channel].add(d.recipient_id)
        for name, recipients in by_channel.items():
            channel = self.channels.get(name)
            if channel is None:
                continue
            limits = channel.limits
            windows = [(limit, window) for limit, window in ((limits.per_minute, MINUTE), (limits.per_hour, HOUR), (limits.per_day, DAY)) if limit is not None]
            ids = sorted(recipients)
            for start in range(0, len(ids), IN_CHUNK):
                some = ids[start : start + IN_CHUNK]
                base = (NoticeDispatch.channel == name, NoticeDispatch.status == "sent", NoticeDispatch.recipient_id.in_(some))
                if windows:
                    columns: list[Any] = [NoticeDispatch.recipient_id]
                    for _, window in windows:
                        recent = NoticeDispatch.sent_at > now - window
                        columns += [sa.func.count().filter(recent), sa.func.min(NoticeDispatch.sent_at).filter(recent)]
                    widest = max(window for _, window in windows)
                    stmt = sa.select(*columns).where(*base, NoticeDispatch.sent_at > now - widest).group_by(NoticeDispatch.recipient_id)
                    for row in (await session.execute(stmt)).all():
                        state.sent[(name, row[0])] = [(row[1 + 2 * i], row[2 + 2 * i]) for i in range(len(windows))]
                if limits.same_content_seconds:
                    stmt = sa.select(NoticeDispatch.recipient_id, NoticeDispatch.title, NoticeDispatch.body).where(
                        *base, NoticeDispatch.sent_at > now - timedelta(seconds=limits.same_content_seconds)
                    )
                    state.same_content.update((name, r, t, b) for r, t, b in (await session.execute(stmt)).all())
        return state

    def _limits(self, dispatch: Any, channel: Channel, state: LimitState, now: datetime) -> tuple[datetime | None, str | None]:
        """(defer until, possibly-dropped reason) from the platform's per-recipient limits."""
        limits = channel.limits
        windows = [(limit, window) for limit, window in ((limits.per_minute, MINUTE), (limits.per_hour, HOUR), (limits.per_day, DAY)) if limit is not None]
        counts = state.sent.get((dispatch.channel, dispatch.recipient_id))
        for index, (limit, window) in enumerate(windows):
            count, oldest = counts[index] if counts else (0, None)
            if count >= limit and not dispatch.critical:
                return (oldest or now) + window, None
        dropped = None
        if limits.same_content_seconds and (dispatch.channel, dispatch.recipient_id, dispatch.title, dispatch.body) in state.same_content:
            dropped = "同一内容一天内已发送，平台可能不再投递 / same content sent within a day; the platform may drop it"
        return None, dropped

    async def _record(self, outcomes: list[Outcome], now: datetime, report: SweepReport) -> list[int]:
        """Record the outcomes of one chunk; returns fallback dispatches to send next.

        One locking read, then every dispatch's new state in one executemany UPDATE and
        every attempt in one multi-row INSERT."""
        fallbacks: list[int] = []
        if not outcomes:
            return fallbacks
        table = NoticeDispatch.__table__  # type: ignore[attr-defined]
        async with self.db.transaction() as session:
            rows = {
                r.id: r
                for r in (
                    await session.execute(sa.select(table).where(table.c.id.in_([o.dispatch_id for o in outcomes])).with_for_update())
                ).all()
            }
            updates: list[dict[str, Any]] = []
            attempts: list[dict[str, Any]] = []
            for outcome in outcomes:
                row = rows.get(outcome.dispatch_id)
                if row is None or outcome.result is None:
                    continue
                dispatch = SimpleNamespace(**row._asdict())
                fallback = await self._apply(session, dispatch, outcome, now, report, attempts)
                updates.append({"b_id": dispatch.id, **{name: getattr(dispatch, name) for name in RECORDED}})
                if fallback is not None:
                    fallbacks.append(fallback)
            if updates:
                await session.execute(
                    table.update().where(table.c.id == sa.bindparam("b_id")).values({name: sa.bindparam(name) for name in RECORDED}),
                    updates,
                )
            if attempts:
                await session.execute(sa.insert(NoticeAttempt.__table__), attempts)  # type: ignore[attr-defined]
        return fallbacks

    async def _apply(
        self, session: AsyncSession, dispatch: Any, outcome: Outcome, now: datetime, report: SweepReport, attempts: list[dict[str, Any]]
    ) -> int | None:
        result = outcome.result
        assert result is not None and dispatch.id is not None
        if result.status not in ("skipped", "rate_limited"):
            dispatch.attempts += 1
        attempts.append({"dispatch_id": dispatch.id, "at": now, "ok": result.status == "sent", "result": result.status, "detail": (result.detail or "")[:500] or None})
        if result.gone_addresses and dispatch.channel == "webpush":
            await session.execute(sa.delete(PushSubscription).where(PushSubscription.endpoint.in_(result.gone_addresses)))
        if result.status == "sent":
            dispatch.status, dispatch.sent_at, dispatch.retry_at = "sent", now, None
            dispatch.external_id = result.external_id
            dispatch.last_error = None
            if outcome.dropped:
                dispatch.possibly_dropped, dispatch.drop_reason = True, outcome.dropped[:200]
            report.sent += 1
        elif result.status == "skipped":
            dispatch.status, dispatch.retry_at, dispatch.last_error = "skipped", None, result.detail
            report.skipped += 1
        elif result.status == "rate_limited":
            dispatch.status, dispatch.retry_at, dispatch.last_error = "retry", outcome.retry_at, result.detail
            report.rate_limited += 1
        elif result.status == "retry" and dispatch.attempts < self.max_attempts:
            dispatch.status, dispatch.last_error = "retry", result.detail
            dispatch.retry_at = now + timedelta(seconds=30 * 2 ** (dispatch.attempts - 1))
            report.retried += 1
        else:
            dispatch.status = "gone" if result.status == "gone" else "failed"
            dispatch.retry_at, dispatch.last_error = None, result.detail
            report.failed += 1
            fallback = await self._fallback(session, dispatch, now)
            return fallback.id if fallback is not None else None
        return None

    async def _fallback(self, session: AsyncSession, failed: Any, now: datetime) -> NoticeDispatch | None:
        """The same message on the person's next channel, under that channel's key."""
        pref = await session.get(NotificationPreference, failed.recipient_id)
        route = await self._route(session, failed.recipient_id, pref)
        tried = set(
            (await session.execute(sa.select(NoticeDelivery.channel).where(NoticeDelivery.dispatch_id == failed.id))).scalars()
        )
        tried.add(failed.channel)
        deliveries = list((await session.execute(sa.select(NoticeDelivery).where(NoticeDelivery.dispatch_id == failed.id))).scalars())
        used = set(
            (
                await session.execute(
                    sa.select(NoticeDelivery.channel).where(
                        NoticeDelivery.notice_id.in_([d.notice_id for d in deliveries]),
                        NoticeDelivery.reminder_no.in_([d.reminder_no for d in deliveries]),
                    )
                )
            ).scalars()
        )
        later = [c for c in route[route.index(failed.channel) + 1 :] if c not in used] if failed.channel in route else [c for c in route if c not in used]
        if not later or not deliveries:
            return None
        channel = later[0]
        dispatch = NoticeDispatch(
            recipient_id=failed.recipient_id,
            channel=channel,
            idempotency_key=rekey(failed.idempotency_key, channel),
            title=failed.title,
            body=failed.body,
            url=failed.url,
            critical=failed.critical,
            status="sending",
            retry_at=now + self.lease,
            created_at=now,
        )
        session.add(dispatch)
        await session.flush()
        for d in deliveries:
            session.add(NoticeDelivery(notice_id=d.notice_id, reminder_no=d.reminder_no, channel=channel, dispatch_id=dispatch.id, created_at=now))
        await session.flush()
        return dispatch

    # ------------------------------------------------------------------ recovery
    async def _recover(self, now: datetime, report: SweepReport) -> None:
        async with self.db.transaction() as session:
            rows = list(
                (
                    await session.execute(
                        sa.select(NoticeDispatch)
                        .where(NoticeDispatch.status.in_(("sending", "retry")), NoticeDispatch.retry_at <= now)
                        .order_by(NoticeDispatch.retry_at)
                        .limit(self.batch_size)
                        .with_for_update(skip_locked=True)
                    )
                ).scalars()
            )
            resend: list[int] = []
            for dispatch in rows:
                channel = self.channels.get(dispatch.channel)
                if dispatch.status == "sending" and not (channel and channel.honours_idempotency):
                    # The sender died after claiming it; it may or may not have gone out, and
                    # this channel would show a second copy. Never re-sent, shown as unknown.
                    dispatch.status, dispatch.retry_at = "unknown", None
                    dispatch.last_error = "发送结果未知（发送进程中断）/ outcome lost when the sender stopped"
                    session.add(NoticeAttempt(dispatch_id=dispatch.id, at=now, ok=False, result="unknown", detail=dispatch.last_error))
                    report.unknown += 1
                    continue
                if dispatch.status == "sending":
                    report.recovered += 1
                dispatch.status, dispatch.retry_at = "sending", now + self.lease
                resend.append(dispatch.id)  # type: ignore[arg-type]
        await self._send_many(resend, now, report)

