"""The policy step: what one due notice needs now (first delivery, a reminder, nothing,
or its superior told), with its new schedule."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from api.domain.people import superior_of
from api.models.people import User
from notifications import outbox
from notifications.delivery.quiet import quiet_until
from notifications.delivery.rows import DueNotice, SweepReport
from notifications.delivery.texts import Item
from notifications.outbox.policies import Policy
from notifications.outbox.workhours import WorkingHours


def decide(
    notice: DueNotice,
    policy: Policy,
    pref: Any,
    now: datetime,
    *,
    hours: WorkingHours,
    tz: ZoneInfo,
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
            quiet[span] = quiet_until(pref.quiet_start, pref.quiet_end, now, tz)
        until = quiet[span]
        if until is not None:
            notice.due_at = until
            report.deferred_quiet += 1
            return None
    scheduled = notice.due_at or now
    if notice.delivered_at is None:
        notice.delivered_at = now
        notice.due_at = policy.after(hours, now) if policy.max_reminders > 0 else None
        report.first_deliveries += 1
        return Item(notice, 0)
    if notice.reminders_sent < policy.max_reminders:
        notice.reminders_sent += 1
        notice.last_reminded_at = now
        more = notice.reminders_sent < policy.max_reminders or policy.escalate is not None
        notice.due_at = policy.next_due(hours, scheduled, now) if more else None
        report.reminders += 1
        return Item(notice, notice.reminders_sent)
    notice.due_at = None
    if policy.escalate == "superior" and notice.escalated_at is None:
        to_escalate.append(notice)
    return None


async def escalate(
    session: AsyncSession, notice: DueNotice, now: datetime, *, tz: ZoneInfo, report: SweepReport
) -> None:
    """Tell the recipient's superior (rare: one notice at a time, through the outbox)."""
    user = await session.get(User, notice.recipient_id)
    superior = await superior_of(session, user) if user else None
    notice.escalated_at = now
    if superior is None or superior.id is None:
        return
    waited_since = (notice.delivered_at or notice.created_at).astimezone(tz).strftime("%m-%d %H:%M")
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
