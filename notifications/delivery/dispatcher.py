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
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
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
from notifications.delivery import bulk
from notifications.delivery.channels import DEFAULT_ORDER, INAPP, Channel, Message, SendResult
from notifications.delivery.quiet import quiet_until
from notifications.delivery.texts import (
    Item,
    digest_text,
    dispatch_key,
    notice_link,
    rekey,
    single_text,
)
from notifications.outbox.policies import Policy, PolicySet, default_policies

log = logging.getLogger("bedside.notifications")

# Several pending items for one person in one sweep become one message from this many on.
DIGEST_MIN_ITEMS = 3
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)

NOTICES: sa.Table = Notice.__table__  # type: ignore[attr-defined]
DISPATCHES: sa.Table = NoticeDispatch.__table__  # type: ignore[attr-defined]
DELIVERIES: sa.Table = NoticeDelivery.__table__  # type: ignore[attr-defined]
ATTEMPTS: sa.Table = NoticeAttempt.__table__  # type: ignore[attr-defined]
PREFS: sa.Table = NotificationPreference.__table__  # type: ignore[attr-defined]


def _windows(channel: Channel) -> list[tuple[int, timedelta]]:
    """(limit, window) for each per-recipient window the channel's platform enforces."""
    limits = channel.limits
    return [
        (limit, window)
        for limit, window in (
            (limits.per_minute, MINUTE),
            (limits.per_hour, HOUR),
            (limits.per_day, DAY),
        )
        if limit is not None
    ]


def _is_limited(channel: Channel) -> bool:
    return bool(_windows(channel)) or bool(channel.limits.same_content_seconds)


@dataclass(slots=True)
class DueNotice:
    """A due notice as the sweep reads it: a plain row it may change (no ORM object)."""

    id: int
    recipient_id: int
    kind: str
    title: str
    body: str
    critical: bool
    created_at: datetime
    read_at: datetime | None
    cancelled_at: datetime | None
    policy_key: str | None
    policy_version: int | None
    due_at: datetime | None
    delivered_at: datetime | None
    reminders_sent: int
    last_reminded_at: datetime | None
    escalated_at: datetime | None
    escalation_notice_id: int | None
    subject_type: str | None
    subject_id: int | None
    sender_id: int | None


DUE_COLUMNS = [NOTICES.c[f.name] for f in fields(DueNotice)]
# What a sweep may change on a notice (written back for the whole batch in one UPDATE).
SCHEDULE = (
    "due_at",
    "delivered_at",
    "reminders_sent",
    "last_reminded_at",
    "escalated_at",
    "escalation_notice_id",
)


@dataclass(slots=True)
class Dispatch:
    """One message to one channel for one person (a row of `notice_dispatch`)."""

    id: int
    recipient_id: int
    channel: str
    idempotency_key: str
    title: str
    body: str
    url: str | None
    critical: bool
    status: str
    attempts: int
    retry_at: datetime | None
    created_at: datetime
    sent_at: datetime | None = None
    external_id: str | None = None
    last_error: str | None = None
    possibly_dropped: bool = False
    drop_reason: str | None = None


DISPATCH_COLUMNS = [DISPATCHES.c[f.name] for f in fields(Dispatch)]
# The columns of a dispatch an outcome changes (written back in one UPDATE).
RECORDED = (
    "status",
    "attempts",
    "retry_at",
    "sent_at",
    "external_id",
    "last_error",
    "possibly_dropped",
    "drop_reason",
)


@dataclass
class Planned:
    """A dispatch of this sweep before it has an id, with where it goes."""

    dispatch: dict[str, Any]
    items: list[Item]
    addresses: list[Any]


@dataclass
class LimitState:
    """Per (channel, recipient): [(count, oldest sent_at)] for each configured window;
    and (channel, recipient, title, body) sent within the same-content window."""

    sent: dict[tuple[str, int], list[tuple[int, datetime | None]]] = field(default_factory=dict)
    same_content: set[tuple[str, int, str, str]] = field(default_factory=set)


@dataclass(slots=True)
class Outcome:
    dispatch: Dispatch
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
    first_by_card: int = 0
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
            prefs = await self._prefs(session, sorted({n.recipient_id for n in notices}))
            pending: dict[int, list[Item]] = defaultdict(list)
            policies: dict[int, Policy] = {}
            to_escalate: list[DueNotice] = []
            quiet: dict[tuple[str, str], datetime | None] = {}
            for notice in notices:
                policy = self._policy(notice)
                item = self._decide(
                    notice, policy, prefs.get(notice.recipient_id), now, report, quiet, to_escalate
                )
                if item is not None:
                    pending[notice.recipient_id].append(item)
                    policies[notice.id] = policy
            for notice in to_escalate:
                await self._escalate(session, notice, now, report)
            await bulk.update_rows(
                session,
                NOTICES,
                [{"id": n.id, **{c: getattr(n, c) for c in SCHEDULE}} for n in notices],
            )

            deliveries: list[dict[str, Any]] = [
                {
                    "notice_id": i.notice.id,
                    "reminder_no": 0,
                    "channel": INAPP,
                    "dispatch_id": None,
                    "created_at": now,
                }
                for items in pending.values()
                for i in items
                if i.reminder_no == 0
            ]
            first = await self._first_channels(session, list(pending), prefs)
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
                for group in self._groups(items, prefs.get(recipient_id), policies):
                    planned.append(
                        Planned(
                            self._new_dispatch(recipient_id, channel, group, now), group, addresses
                        )
                    )
            dispatches = await self._insert_dispatches(session, [p.dispatch for p in planned])
            deliveries += [
                {
                    "notice_id": i.notice.id,
                    "reminder_no": i.reminder_no,
                    "channel": d.channel,
                    "dispatch_id": d.id,
                    "created_at": now,
                }
                for p, d in zip(planned, dispatches, strict=True)
                for i in p.items
            ]
            await bulk.insert_rows(session, DELIVERIES, deliveries)
            # Read and cancel were checked just now under the notices' locks: no re-check.
            outcomes = await self._prepare(
                session,
                dispatches,
                now,
                addresses={d.id: p.addresses for p, d in zip(planned, dispatches, strict=True)},
            )
            return outcomes, len(notices)

    async def _prefs(self, session: AsyncSession, user_ids: list[int]) -> dict[int, Any]:
        found: dict[int, Any] = {}
        columns = (
            PREFS.c.user_id,
            PREFS.c.channels,
            PREFS.c.quiet_start,
            PREFS.c.quiet_end,
            PREFS.c.digest,
        )
        for where in bulk.id_filters(session, PREFS.c.user_id, user_ids):
            found.update(
                (r.user_id, r)
                for r in (await session.execute(sa.select(*columns).where(where))).all()
            )
        return found

    def _policy(self, notice: Any) -> Policy:
        key = (notice.policy_key, notice.policy_version, notice.kind)
        policy = self._policy_of.get(key)
        if policy is None:
            policy = self.policies.get(
                notice.policy_key, notice.policy_version
            ) or self.policies.for_kind(notice.kind)
            self._policy_of[key] = policy
        return policy

    def _decide(
        self,
        notice: DueNotice,
        policy: Policy,
        pref: Any,
        now: datetime,
        report: SweepReport,
        quiet: dict[tuple[str, str], datetime | None],
        to_escalate: list[DueNotice],
    ) -> Item | None:
        """What this due notice needs now; updates its schedule. None: nothing to send."""
        if notice.read_at is not None or notice.cancelled_at is not None:
            notice.due_at = None
            report.stopped += 1
            return None
        if (
            policy.respect_quiet_hours
            and not notice.critical
            and pref is not None
            and pref.quiet_start
            and pref.quiet_end
        ):
            span = (pref.quiet_start, pref.quiet_end)
            if span not in quiet:
                quiet[span] = quiet_until(pref.quiet_start, pref.quiet_end, now, self.tz)
            until = quiet[span]
            if until is not None:
                notice.due_at = until
                report.deferred_quiet += 1
                return None
        scheduled = notice.due_at or now
        if notice.delivered_at is None:
            notice.delivered_at = now
            notice.due_at = policy.after(self.hours, now) if policy.max_reminders > 0 else None
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
            to_escalate.append(notice)
        return None

    async def _escalate(
        self, session: AsyncSession, notice: DueNotice, now: datetime, report: SweepReport
    ) -> None:
        """Tell the recipient's superior (rare: one notice at a time, through the outbox)."""
        user = await session.get(User, notice.recipient_id)
        superior = await superior_of(session, user) if user else None
        notice.escalated_at = now
        if superior is None or superior.id is None:
            return
        waited_since = (
            (notice.delivered_at or notice.created_at).astimezone(self.tz).strftime("%m-%d %H:%M")
        )
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
        report.escalations += 1
        report.escalated_notice_ids.append(escalation.id)  # type: ignore[arg-type]

    def _groups(
        self, items: list[Item], pref: Any, policies: dict[int, Policy]
    ) -> list[list[Item]]:
        """One message per item, or a digest of the non-critical ones when they pile up."""
        wants_digest = pref.digest if pref is not None else True
        if not wants_digest or len(items) < DIGEST_MIN_ITEMS:
            return [[i] for i in items]
        digestible = [i for i in items if not i.notice.critical and policies[i.notice.id].digest]
        if len(digestible) < DIGEST_MIN_ITEMS:
            return [[i] for i in items]
        rest = [[i] for i in items if i not in digestible]
        return [digestible, *rest]

    def _order(self, pref: Any) -> list[str]:
        """The person's channels in their order, those this process has configured."""
        order = list(pref.channels) if pref is not None and pref.channels else list(DEFAULT_ORDER)
        return [name for name in order if name in self.channels]

    async def _addresses_many(
        self, session: AsyncSession, channel: Channel, user_ids: list[int]
    ) -> dict[int, list[Any]]:
        many = getattr(channel, "addresses_many", None)
        if many is not None:
            return dict(await many(session, user_ids))
        return {u: await channel.addresses(session, u) for u in user_ids}

    async def _first_channels(
        self, session: AsyncSession, user_ids: list[int], prefs: dict[int, Any]
    ) -> dict[int, tuple[str, list[Any]]]:
        """Each person's first channel that reaches them, with the addresses there: one
        lookup per channel and round (people unreachable on their first choice go on to
        their next one in the following round)."""
        orders = {u: self._order(prefs.get(u)) for u in user_ids}
        position = {u: 0 for u in user_ids if orders[u]}
        found: dict[int, tuple[str, list[Any]]] = {}
        while position:
            by_channel: dict[str, list[int]] = defaultdict(list)
            for u, i in position.items():
                by_channel[orders[u][i]].append(u)
            nxt: dict[int, int] = {}
            for name, ids in by_channel.items():
                reached = await self._addresses_many(session, self.channels[name], ids)
                for u in ids:
                    if reached.get(u):
                        found[u] = (name, reached[u])
                    elif position[u] + 1 < len(orders[u]):
                        nxt[u] = position[u] + 1
            position = nxt
        return found

    async def _route(self, session: AsyncSession, user_id: int) -> list[str]:
        """Every channel that reaches one person, in their order (for a fallback)."""
        pref = (await self._prefs(session, [user_id])).get(user_id)
        return [
            name
            for name in self._order(pref)
            if await self.channels[name].addresses(session, user_id)
        ]

    def _new_dispatch(
        self, recipient_id: int, channel: str, items: list[Item], now: datetime
    ) -> dict[str, Any]:
        """The row of a new dispatch (inserted with its batch)."""
        settings = self.services.settings
        if len(items) == 1:
            title, body = single_text(items[0], self.tz)
            url = notice_link(settings.public_url, settings.effective_secret_key, items[0].notice)
        else:
            title, body = digest_text(items, self.tz)
            url = f"{settings.public_url.rstrip('/')}/notices"
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

    async def _insert_dispatches(
        self, session: AsyncSession, rows: list[dict[str, Any]]
    ) -> list[Dispatch]:
        """INSERT new dispatches; the same rows back as `Dispatch`es with their ids."""
        # Matched back by key: every dispatch has its own idempotency key (unique).
        ids = dict(
            (key, i)
            for i, key in await bulk.insert_rows(
                session, DISPATCHES, rows, returning=("id", "idempotency_key")
            )
        )
        return [Dispatch(id=ids[r["idempotency_key"]], **r) for r in rows]

    # ------------------------------------------------------------------ sending
    async def _deliver(self, outcomes: list[Outcome], now: datetime, report: SweepReport) -> None:
        """Send what is ready with bounded concurrency, then record every outcome of the
        batch in one transaction (one commit, not one per message; a crash in between is
        what the recovery sweep is for). Fallbacks to a next channel go the same way."""
        while outcomes:
            await self._send(outcomes)
            fallbacks = await self._record(outcomes, now, report)
            if not fallbacks:
                return
            async with self.db.session() as session:
                outcomes = await self._prepare(session, fallbacks, now, check_reads=True)

    async def _send(self, outcomes: list[Outcome]) -> None:
        """At most `concurrency` sends in flight: that many lanes take the next message
        as each finishes (no task per message)."""
        ready = [o for o in outcomes if o.message is not None]
        queue = iter(ready)

        async def lane() -> None:
            for outcome in queue:
                channel = self.channels[outcome.dispatch.channel]
                try:
                    outcome.result = await channel.send(outcome.message)  # type: ignore[arg-type]
                except Exception as exc:  # noqa: BLE001 - a channel bug is a retry, never a lost notice
                    log.warning("channel %s raised", channel.name, exc_info=True)
                    outcome.result = SendResult("retry", detail=type(exc).__name__)

        await asyncio.gather(*(lane() for _ in range(min(self.concurrency, len(ready)))))

    async def _prepare(
        self,
        session: AsyncSession,
        dispatches: list[Dispatch],
        now: datetime,
        *,
        addresses: dict[int, list[Any]] | None = None,
        check_reads: bool = False,
    ) -> list[Outcome]:
        """For each dispatch: a message to send, or the outcome decided without sending.

        `check_reads`: whether a dispatch's notices were all read (or cancelled) since it
        was planned — checked when a reminder is sent again after a crash or a retry."""
        outcomes: list[Outcome] = []
        closed: set[int] = set()
        if check_reads and dispatches:
            closed = await self._read_since(session, [d.id for d in dispatches])
        limits = await self._limit_state(session, dispatches, now)
        if addresses is None:
            addresses = {}
            by_channel: dict[str, set[int]] = defaultdict(set)
            for d in dispatches:
                if d.channel in self.channels:
                    by_channel[d.channel].add(d.recipient_id)
            reached = {
                name: await self._addresses_many(session, self.channels[name], sorted(ids))
                for name, ids in by_channel.items()
            }
            addresses = {
                d.id: reached.get(d.channel, {}).get(d.recipient_id, []) for d in dispatches
            }
        limited = {name for name, channel in self.channels.items() if _is_limited(channel)}
        for dispatch in dispatches:
            channel = self.channels.get(dispatch.channel)
            if channel is None:
                outcomes.append(
                    Outcome(dispatch, SendResult("failed", detail="channel not configured"))
                )
                continue
            if dispatch.id in closed:
                outcomes.append(
                    Outcome(
                        dispatch, SendResult("skipped", detail="read before the reminder fired")
                    )
                )
                continue
            where = addresses.get(dispatch.id)
            if not where:
                outcomes.append(
                    Outcome(
                        dispatch,
                        SendResult("gone", detail="recipient not reachable on this channel"),
                    )
                )
                continue
            defer_until, dropped = (
                self._limits(dispatch, channel, limits, now)
                if dispatch.channel in limited
                else (None, None)
            )
            if defer_until is not None:
                detail = f"per-recipient limit; deferred to {defer_until.isoformat()}"
                outcomes.append(
                    Outcome(
                        dispatch, SendResult("rate_limited", detail=detail), retry_at=defer_until
                    )
                )
                continue
            message = Message(
                dispatch_id=dispatch.id,
                idempotency_key=dispatch.idempotency_key,
                recipient_id=dispatch.recipient_id,
                addresses=list(where),
                title=dispatch.title,
                body=dispatch.body,
                url=dispatch.url,
                critical=dispatch.critical,
                channel=dispatch.channel,
            )
            outcomes.append(Outcome(dispatch, None, message=message, dropped=dropped))
        return outcomes

    async def _read_since(self, session: AsyncSession, dispatch_ids: list[int]) -> set[int]:
        """Dispatches carrying a reminder whose notices are all read or cancelled by now
        (a first delivery still goes out: it is the notice itself)."""
        states: dict[int, list[Any]] = defaultdict(list)
        for where in bulk.id_filters(session, DELIVERIES.c.dispatch_id, dispatch_ids):
            rows = await session.execute(
                sa.select(
                    DELIVERIES.c.dispatch_id,
                    DELIVERIES.c.reminder_no,
                    NOTICES.c.read_at,
                    NOTICES.c.cancelled_at,
                )
                .join(NOTICES, NOTICES.c.id == DELIVERIES.c.notice_id)
                .where(where)
            )
            for row in rows.all():
                states[row.dispatch_id].append(row)
        return {
            d
            for d, items in states.items()
            if all(r.read_at is not None or r.cancelled_at is not None for r in items)
            and any(r.reminder_no > 0 for r in items)
        }

    async def _limit_state(
        self, session: AsyncSession, dispatches: list[Dispatch], now: datetime
    ) -> LimitState:
        """What went out already to the batch's recipients, per limited channel: a few
        grouped queries per batch instead of several per message; `_limits` then counts
        the batch's own messages as it lets them through."""
        state = LimitState()
        by_channel: dict[str, set[int]] = defaultdict(set)
        for d in dispatches:
            by_channel[d.channel].add(d.recipient_id)
        for name, recipients in by_channel.items():
            channel = self.channels.get(name)
            if channel is None:
                continue
            if not _is_limited(channel):
                continue
            limits = channel.limits
            windows = _windows(channel)
            for where in bulk.id_filters(session, DISPATCHES.c.recipient_id, sorted(recipients)):
                base = (DISPATCHES.c.channel == name, DISPATCHES.c.status == "sent", where)
                if windows:
                    columns: list[Any] = [DISPATCHES.c.recipient_id]
                    for _, window in windows:
                        recent = DISPATCHES.c.sent_at > now - window
                        columns += [
                            sa.func.count().filter(recent),
                            sa.func.min(DISPATCHES.c.sent_at).filter(recent),
                        ]
                    widest = max(window for _, window in windows)
                    stmt = (
                        sa.select(*columns)
                        .where(*base, DISPATCHES.c.sent_at > now - widest)
                        .group_by(DISPATCHES.c.recipient_id)
                    )
                    for row in (await session.execute(stmt)).all():
                        state.sent[(name, row[0])] = [
                            (row[1 + 2 * i], row[2 + 2 * i]) for i in range(len(windows))
                        ]
                if limits.same_content_seconds:
                    stmt = sa.select(
                        DISPATCHES.c.recipient_id, DISPATCHES.c.title, DISPATCHES.c.body
                    ).where(
                        *base,
                        DISPATCHES.c.sent_at > now - timedelta(seconds=limits.same_content_seconds),
                    )
                    state.same_content.update(
                        (name, r, t, b) for r, t, b in (await session.execute(stmt)).all()
                    )
        return state

    def _limits(
        self, dispatch: Dispatch, channel: Channel, state: LimitState, now: datetime
    ) -> tuple[datetime | None, str | None]:
        """(defer until, possibly-dropped reason) from the platform's per-recipient limits.

        A message let through counts at once against the rest of its batch: thirty-one
        pending for one WeCom member in one sweep are thirty now and one a minute later."""
        limits = channel.limits
        windows = _windows(channel)
        where = (dispatch.channel, dispatch.recipient_id)
        counts = state.sent.get(where) or [(0, None)] * len(windows)
        for (limit, window), (count, oldest) in zip(windows, counts, strict=True):
            if count >= limit and not dispatch.critical:
                return (oldest or now) + window, None
        state.sent[where] = [(count + 1, oldest or now) for count, oldest in counts]
        dropped = None
        content = (dispatch.channel, dispatch.recipient_id, dispatch.title, dispatch.body)
        if limits.same_content_seconds:
            if content in state.same_content:
                dropped = "同一内容一天内已发送，平台可能不再投递 / same content sent within a day; the platform may drop it"
            state.same_content.add(content)
        return None, dropped

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
            if self._apply(outcome, now, report, attempts, gone):
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
                fallback = await self._fallback(session, dispatch, now)
                if fallback is not None:
                    fallbacks.append(fallback)
        return fallbacks

    def _apply(
        self,
        outcome: Outcome,
        now: datetime,
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
        attempts.append(
            {
                "dispatch_id": dispatch.id,
                "at": now,
                "ok": result.status == "sent",
                "result": result.status,
                "detail": detail,
            }
        )
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
        elif result.status == "retry" and dispatch.attempts < self.max_attempts:
            dispatch.status, dispatch.last_error = "retry", detail
            dispatch.retry_at = now + timedelta(seconds=30 * 2 ** (dispatch.attempts - 1))
            report.retried += 1
        else:
            dispatch.status = "gone" if result.status == "gone" else "failed"
            dispatch.retry_at, dispatch.last_error = None, detail
            report.failed += 1
            return True
        return False

    async def _fallback(
        self, session: AsyncSession, failed: Dispatch, now: datetime
    ) -> Dispatch | None:
        """The same message on the person's next channel, under that channel's key."""
        route = await self._route(session, failed.recipient_id)
        deliveries = (
            await session.execute(
                sa.select(DELIVERIES.c.notice_id, DELIVERIES.c.reminder_no).where(
                    DELIVERIES.c.dispatch_id == failed.id
                )
            )
        ).all()
        if not deliveries:
            return None
        used = set(
            (
                await session.execute(
                    sa.select(DELIVERIES.c.channel).where(
                        DELIVERIES.c.notice_id.in_([d.notice_id for d in deliveries]),
                        DELIVERIES.c.reminder_no.in_([d.reminder_no for d in deliveries]),
                    )
                )
            ).scalars()
        )
        later = (
            [c for c in route[route.index(failed.channel) + 1 :] if c not in used]
            if failed.channel in route
            else [c for c in route if c not in used]
        )
        if not later:
            return None
        channel = later[0]
        row = {
            "recipient_id": failed.recipient_id,
            "channel": channel,
            "idempotency_key": rekey(failed.idempotency_key, channel),
            "title": failed.title,
            "body": failed.body,
            "url": failed.url,
            "critical": failed.critical,
            "status": "sending",
            "attempts": 0,
            "retry_at": now + self.lease,
            "created_at": now,
            "possibly_dropped": False,
        }
        (dispatch,) = await self._insert_dispatches(session, [row])
        await bulk.insert_rows(
            session,
            DELIVERIES,
            [
                {
                    "notice_id": d.notice_id,
                    "reminder_no": d.reminder_no,
                    "channel": channel,
                    "dispatch_id": dispatch.id,
                    "created_at": now,
                }
                for d in deliveries
            ],
        )
        return dispatch

    # ------------------------------------------------------------------ recovery
    async def _recover(self, now: datetime, report: SweepReport) -> None:
        async with self.db.transaction() as session:
            rows = (
                await session.execute(
                    sa.select(*DISPATCH_COLUMNS)
                    .where(
                        DISPATCHES.c.status.in_(("sending", "retry")), DISPATCHES.c.retry_at <= now
                    )
                    .order_by(DISPATCHES.c.retry_at)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return
            resend: list[Dispatch] = []
            attempts: list[dict[str, Any]] = []
            changed: list[Dispatch] = []
            for row in rows:
                dispatch = Dispatch(*row)
                channel = self.channels.get(dispatch.channel)
                if dispatch.status == "sending" and not (channel and channel.honours_idempotency):
                    # The sender died after claiming it; it may or may not have gone out, and
                    # this channel would show a second copy. Never re-sent, shown as unknown.
                    dispatch.status, dispatch.retry_at = "unknown", None
                    dispatch.last_error = (
                        "发送结果未知（发送进程中断）/ outcome lost when the sender stopped"
                    )
                    attempts.append(
                        {
                            "dispatch_id": dispatch.id,
                            "at": now,
                            "ok": False,
                            "result": "unknown",
                            "detail": dispatch.last_error,
                        }
                    )
                    report.unknown += 1
                else:
                    if dispatch.status == "sending":
                        report.recovered += 1
                    dispatch.status, dispatch.retry_at = "sending", now + self.lease
                    resend.append(dispatch)
                changed.append(dispatch)
            await bulk.update_rows(
                session,
                DISPATCHES,
                [
                    {
                        "id": d.id,
                        "status": d.status,
                        "retry_at": d.retry_at,
                        "last_error": d.last_error,
                    }
                    for d in changed
                ],
            )
            await bulk.insert_rows(session, ATTEMPTS, attempts)
        if resend:
            async with self.db.session() as session:
                outcomes = await self._prepare(session, resend, now, check_reads=True)
            await self._deliver(outcomes, now, report)
