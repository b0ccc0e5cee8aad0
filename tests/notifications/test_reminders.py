"""Repeat until read, then escalate: driven through a real arq worker with injected time."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from api.domain.people import user_by_username
from api.models.notifications import NotificationPreference
from api.services import Services
from notifications import outbox
from notifications.delivery.setup import build_dispatcher
from tests.notifications.conftest import local
from tests.notifications.harness import ArqHarness, Sink

MARK_READ = "mutation($id: ID!) { markNoticeRead(id: $id) { id readAt } }"


async def _penalty_notice_for_chief(services: Services) -> tuple[int, int, int]:
    async with services.db.transaction() as session:
        chief = await user_by_username(session, "chief.wang")
        superior = await user_by_username(session, "ma.zhao")
        for user in (chief, superior):
            session.add(NotificationPreference(user_id=user.id, channels=["webhook"], digest=True))
        notice = await outbox.enqueue(
            session,
            recipient_id=chief.id,
            kind="penalty.issued",
            title="奖惩通知书 / penalty notice",
            body="普外科 李医生 扣分处理已下发",
            idempotency_key="test:penalty:1:chief",
            subject_type="penalty",
            subject_id=1,
        )
        return notice.id, chief.id, superior.id  # type: ignore[return-value]


async def _dispatch_log(services: Services, recipient_id: int) -> str:
    """What the database says was dispatched to one person: read when an arrival is missing."""
    async with services.db.session() as session:
        rows = (
            await session.execute(
                sa.text(
                    "SELECT d.id, d.idempotency_key, d.status, d.attempts, d.created_at, d.sent_at, d.last_error,"
                    " (SELECT string_agg(a.result || '@' || a.at::text, ',') FROM notice_attempt a WHERE a.dispatch_id = d.id) AS tries"
                    " FROM notice_dispatch d WHERE d.recipient_id = :r ORDER BY d.id"
                ),
                {"r": recipient_id},
            )
        ).all()
    return "\n".join(str(tuple(r)) for r in rows)


def _half_hours(start: datetime, end: datetime) -> list[datetime]:
    times, t = [], start
    while t <= end:
        times.append(t)
        t += timedelta(minutes=30)
    return times


async def _run(
    h: ArqHarness, sink: Sink, recipient: int, times: list[datetime]
) -> dict[datetime, int]:
    """Sweep at each time; return when each message to `recipient` arrived."""
    arrivals: dict[datetime, int] = {}
    for t in times:
        before = len(sink.to(recipient))
        await h.sweep(t)
        if len(sink.to(recipient)) > before:
            arrivals[t] = len(sink.to(recipient)) - before
    return arrivals


async def test_a_chief_who_never_reads_gets_the_policys_reminders_then_the_superior_is_told(
    notify_services: Services, sink: Sink
) -> None:
    notice_id, chief, superior = await _penalty_notice_for_chief(notify_services)
    dispatcher = build_dispatcher(notify_services)
    async with ArqHarness(notify_services, dispatcher) as h:
        # Monday 09:00 to Tuesday 12:00, a sweep every half hour.
        times = _half_hours(local(2026, 12, 7, 9, 0), local(2026, 12, 8, 12, 0))
        to_chief = await _run(h, sink, chief, times)
    # Policy "penalty": first delivery, then every 2 working hours (08:00-12:00, 13:30-17:30),
    # three reminders, then one more interval before the superior hears of it.
    assert to_chief == {
        local(2026, 12, 7, 9, 0): 1,
        local(2026, 12, 7, 11, 0): 1,
        local(2026, 12, 7, 14, 30): 1,
        local(2026, 12, 7, 16, 30): 1,
    }, await _dispatch_log(notify_services, chief)
    texts = [m["title"] for m in sink.to(chief)]
    assert texts[0] == "奖惩通知书 / penalty notice"
    assert [t.split("】")[0] for t in texts[1:]] == [
        "【第1次提醒 / reminder 1",
        "【第2次提醒 / reminder 2",
        "【第3次提醒 / reminder 3",
    ]
    assert len(set(m["body"] for m in sink.to(chief))) == 4  # every text differs
    escalations = sink.to(superior)
    assert (
        len(escalations) == 1
        and "升级" in escalations[0]["title"]
        and "王" in escalations[0]["title"]
    )
    async with notify_services.db.session() as session:
        row = (
            await session.execute(
                sa.text("SELECT reminders_sent, escalated_at, due_at FROM notice WHERE id = :i"),
                {"i": notice_id},
            )
        ).one()
    assert row.reminders_sent == 3 and row.due_at is None
    assert row.escalated_at == local(2026, 12, 8, 9, 0)


async def test_a_read_after_the_second_reminder_stops_the_third(
    notify_services: Services, sink: Sink, http
) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import GraphQLClient

    notice_id, chief, superior = await _penalty_notice_for_chief(notify_services)
    dispatcher = build_dispatcher(notify_services)
    async with ArqHarness(notify_services, dispatcher) as h:
        first = await _run(
            h, sink, chief, _half_hours(local(2026, 12, 7, 9, 0), local(2026, 12, 7, 14, 30))
        )
        assert list(first) == [
            local(2026, 12, 7, 9, 0),
            local(2026, 12, 7, 11, 0),
            local(2026, 12, 7, 14, 30),
        ]
        client = await GraphQLClient(http).as_user("chief.wang")
        data = await client.data(MARK_READ, {"id": str(notice_id)})
        assert data["markNoticeRead"]["readAt"]
        again = await client.data(MARK_READ, {"id": str(notice_id)})  # idempotent
        assert again["markNoticeRead"]["readAt"] == data["markNoticeRead"]["readAt"]
        later = await _run(
            h, sink, chief, _half_hours(local(2026, 12, 7, 15, 0), local(2026, 12, 9, 12, 0))
        )
    assert later == {}
    assert sink.to(superior) == []


async def test_reminders_that_fell_due_during_an_outage_coalesce_into_one(
    notify_services: Services, sink: Sink
) -> None:
    notice_id, chief, _ = await _penalty_notice_for_chief(notify_services)
    dispatcher = build_dispatcher(notify_services)
    async with ArqHarness(notify_services, dispatcher) as h:
        await h.sweep(local(2026, 12, 7, 9, 0))
        # Workers down from 09:00 to 16:00: reminders were due at 11:00 and 14:30.
        report = await h.sweep(local(2026, 12, 7, 16, 0))
        assert report["reminders"] == 1
        # The next is counted from now (16:00 + 2 working hours = Tue 08:30), not a burst.
        assert (
            await _run(
                h, sink, chief, _half_hours(local(2026, 12, 7, 16, 30), local(2026, 12, 8, 8, 0))
            )
            == {}
        )
        assert await _run(h, sink, chief, [local(2026, 12, 8, 8, 30)]) == {
            local(2026, 12, 8, 8, 30): 1
        }
    titles = [m["title"] for m in sink.to(chief)]
    assert titles[1].startswith("【第1次提醒") and titles[2].startswith("【第2次提醒")


async def test_quiet_hours_defer_all_but_critical_notices(
    notify_services: Services, sink: Sink
) -> None:
    async with notify_services.db.transaction() as session:
        doctor = await user_by_username(session, "dr.li")
        session.add(
            NotificationPreference(
                user_id=doctor.id, channels=["webhook"], quiet_start="22:00", quiet_end="07:30"
            )
        )
        await outbox.enqueue(
            session, recipient_id=doctor.id, kind="info", title="普通通知", idempotency_key="q:1"
        )
        await outbox.enqueue(
            session,
            recipient_id=doctor.id,
            kind="approval.emergency",
            title="急诊手术审批",
            idempotency_key="q:2",
            critical=True,
        )
    async with ArqHarness(notify_services, build_dispatcher(notify_services)) as h:
        await h.sweep(local(2026, 12, 7, 23, 0))
        assert [m["title"] for m in sink.to(doctor.id)] == ["急诊手术审批"]
        await h.sweep(local(2026, 12, 8, 7, 0))
        assert len(sink.to(doctor.id)) == 1
        await h.sweep(local(2026, 12, 8, 7, 30))
    assert [m["title"] for m in sink.to(doctor.id)] == ["急诊手术审批", "普通通知"]


async def test_pending_items_for_one_person_are_digested(
    notify_services: Services, sink: Sink
) -> None:
    async with notify_services.db.transaction() as session:
        doctor = await user_by_username(session, "dr.li")
        session.add(NotificationPreference(user_id=doctor.id, channels=["webhook"]))
        for i in range(4):
            await outbox.enqueue(
                session,
                recipient_id=doctor.id,
                kind="info",
                title=f"通知 {i}",
                idempotency_key=f"dg:{i}",
            )
    async with ArqHarness(notify_services, build_dispatcher(notify_services)) as h:
        await h.sweep(local(2026, 12, 7, 10, 0))
    messages = sink.to(doctor.id)
    assert len(messages) == 1
    assert messages[0]["title"] == "您有 4 条待阅通知 / 4 notices waiting"
    assert all(f"通知 {i}" in messages[0]["body"] for i in range(4))
