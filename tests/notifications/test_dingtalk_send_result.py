"""A DingTalk work notice answered "ok" is sent only if its send result says so
(获取工作通知消息的发送结果: invalid / forbidden / failed user lists)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from api.domain.people import user_by_username
from api.models.notifications import NoticeDispatch, NotificationPreference
from api.services import Services
from notifications import outbox
from notifications.delivery.setup import build_dispatcher
from tests.simulators.platforms import PlatformSimulator, simulated_services


async def statuses(services: Services) -> dict[str, str]:
    async with services.db.session() as session:
        rows = await session.execute(sa.select(NoticeDispatch.channel, NoticeDispatch.status))
        return dict(rows.all())


async def send_one(services: Services) -> None:
    async with services.db.transaction() as session:
        chief = await user_by_username(session, "chief.wang")
        session.add(
            NotificationPreference(user_id=chief.id, channels=["dingtalk", "webhook"], digest=False)
        )
        await outbox.enqueue(
            session, recipient_id=chief.id, kind="info", title="科室通知", idempotency_key="dt:1"
        )
    dispatcher = build_dispatcher(services)
    try:
        await dispatcher.sweep(datetime.now(UTC))
    finally:
        await dispatcher.aclose()


async def test_a_notice_to_a_user_dingtalk_does_not_know_is_not_sent(
    notify_services: Services, platform_sim: PlatformSimulator, sink
) -> None:
    platform_sim.state.dingtalk_unknown_users.add("chief.wang")
    services = simulated_services(notify_services, platform_sim)
    try:
        await send_one(services)
    finally:
        await services.extras["platforms"].aclose()
    found = await statuses(services)
    assert found["dingtalk"] == "gone"  # asyncsend_v2 said ok; the send result said no
    assert found.get("webhook") == "sent"  # the next channel took it
    assert not platform_sim.messages_to("dingtalk", "chief.wang")


async def test_a_reached_user_is_sent(
    notify_services: Services, platform_sim: PlatformSimulator
) -> None:
    services = simulated_services(notify_services, platform_sim)
    try:
        await send_one(services)
    finally:
        await services.extras["platforms"].aclose()
    assert (await statuses(services))["dingtalk"] == "sent"
    assert len(platform_sim.messages_to("dingtalk", "chief.wang")) == 1
