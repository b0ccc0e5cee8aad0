"""A worker killed between sending and recording the send loses nothing and sends no
duplicate to a channel that honours our key; on a channel that does not, the message is
never sent a second time and the sender sees its outcome as unknown."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import sqlalchemy as sa

from api.domain.people import user_by_username
from api.models.notifications import NoticeAttempt, NoticeDispatch, NotificationPreference
from api.services import Services
from notifications import outbox
from notifications.delivery.channels import Message, SendResult
from notifications.delivery.setup import build_channels, build_dispatcher
from tests.notifications.conftest import local
from tests.notifications.harness import ArqHarness, Sink
from tests.simulators.platforms import PlatformSimulator, simulated_services


class HangsAfterSending:
    """The real channel, but the worker stops right after the message left it."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.name = inner.name
        self.honours_idempotency = inner.honours_idempotency
        self.limits = inner.limits
        self.sent = asyncio.Event()

    async def addresses(self, session, user_id):  # type: ignore[no-untyped-def]
        return await self.inner.addresses(session, user_id)

    async def send(self, message: Message) -> SendResult:
        await self.inner.send(message)
        self.sent.set()
        await asyncio.Event().wait()  # killed here: never returns to record the send
        raise AssertionError("unreachable")


async def _notice_for(services: Services, username: str, channel: str) -> int:
    async with services.db.transaction() as session:
        user = await user_by_username(session, username)
        session.add(NotificationPreference(user_id=user.id, channels=[channel]))
        await outbox.enqueue(
            session,
            recipient_id=user.id,
            kind="penalty.issued",
            title="奖惩通知书",
            idempotency_key=f"crash:{username}",
        )
        return user.id  # type: ignore[return-value]


async def _kill_mid_delivery(services: Services, channel_name: str, when) -> None:  # type: ignore[no-untyped-def]
    channels = build_channels(services)
    hanging = HangsAfterSending(channels[channel_name])
    channels[channel_name] = hanging
    async with ArqHarness(services, build_dispatcher(services, channels=channels), kill=True) as h:
        await h.pool.enqueue_job("sweep", now=when.isoformat())
        await asyncio.wait_for(hanging.sent.wait(), 20)
    # leaving the block stops the worker with the job still inside channel.send


async def test_killed_worker_does_not_duplicate_on_a_channel_honouring_the_key(
    notify_services: Services, sink: Sink
) -> None:
    recipient = await _notice_for(notify_services, "chief.wang", "webhook")
    t0 = local(2026, 12, 7, 9, 0)
    await _kill_mid_delivery(notify_services, "webhook", t0)
    assert len(sink.requests) == 1
    async with notify_services.db.session() as session:
        dispatch = (await session.execute(sa.select(NoticeDispatch))).scalar_one()
    assert dispatch.status == "sending"  # the send was never recorded

    async with ArqHarness(notify_services, build_dispatcher(notify_services)) as h:
        await h.sweep(t0 + timedelta(minutes=1))  # still within the lease: left alone
        assert len(sink.requests) == 1
        report = await h.sweep(t0 + timedelta(minutes=6))
    assert report["recovered"] == 1
    # Sent again under the same key, which the receiver dropped: one message, two requests.
    assert [r["key"] for r in sink.requests] == ["n1:r0:webhook", "n1:r0:webhook"]
    assert len(sink.to(recipient)) == 1
    async with notify_services.db.session() as session:
        dispatch = (await session.execute(sa.select(NoticeDispatch))).scalar_one()
        attempts = (await session.execute(sa.select(NoticeAttempt.result))).scalars().all()
    assert dispatch.status == "sent" and dispatch.idempotency_key == "n1:r0:webhook"
    assert attempts == ["sent"]


async def test_killed_worker_never_resends_to_a_channel_without_idempotency(
    notify_services: Services,
    platform_sim: PlatformSimulator,
    gql,  # type: ignore[no-untyped-def]
) -> None:
    services = simulated_services(notify_services, platform_sim)
    async with services.db.transaction() as session:
        user = await user_by_username(session, "chief.wang")
        session.add(NotificationPreference(user_id=user.id, channels=["dingtalk"]))
        await outbox.enqueue(
            session,
            recipient_id=user.id,
            kind="penalty.issued",
            title="奖惩通知书",
            idempotency_key="crash:ding",
            subject_type="penalty",
            subject_id=7,
        )
    t0 = local(2026, 12, 7, 9, 0)
    await _kill_mid_delivery(services, "dingtalk", t0)
    async with ArqHarness(services, build_dispatcher(services)) as h:
        report = await h.sweep(t0 + timedelta(minutes=6))
    assert report["unknown"] == 1 and report["recovered"] == 0
    assert len(platform_sim.messages_to("dingtalk", "chief.wang")) == 1
    # medical affairs sees the receipt: outcome unknown, flagged.
    client = await gql.as_user("ma.zhao")
    data = await client.data(
        'query { noticeReceipts(subjectType: "penalty", subjectId: "7") { recipient { username } possiblyDropped deliveries { channel status } } }'
    )
    receipt = data["noticeReceipts"][0]
    assert receipt["recipient"]["username"] == "chief.wang" and receipt["possiblyDropped"] is True
    assert {"channel": "dingtalk", "status": "unknown"} in receipt["deliveries"]
