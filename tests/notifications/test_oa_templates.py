"""Patients are told by Official Account template message, with the keys the hospital's
templates have, and platform states that wait for the hospital do not lose a notice.

The simulator's template endpoint follows 模板消息接口
(https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Template_Message_Interface.html)
and the 2023-05-04 rules: only the template's keys show, `first`/`remark` are dropped, a
`thing` value is cut at 20 characters. The per-type limits beyond `thing` come from the
subscription-message table the category templates share; WeChat's template-message page
does not list them itself, so those are not confirmed for template messages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import sqlalchemy as sa

from api.app import create_app
from api.models.notifications import NoticeDispatch
from api.services import Services
from notifications.delivery.channels.oa_templates import fit
from notifications.delivery.setup import build_dispatcher
from tests.conftest import GraphQLClient
from tests.simulators.platforms import PlatformSimulator, simulated_services

SLOTS = "query($c: String!, $f: Date!, $t: Date!) { availableSlots(itemCode: $c, from: $f, to: $t) { id startsAt remaining } }"
BOOK = "mutation($s: ID!) { bookAppointment(slotId: $s) { id status startsAt } }"

TEMPLATES = {
    # what a hospital copies from its 模板库 entries: template id and which fact in which key
    "booking_confirmed": {
        "template_id": "tmpl-yuyue-chenggong",
        "data": {
            "thing1": "item",
            "time2": "time",
            "thing3": "room",
            "character_string4": "receipt_no",
        },
    },
    "booking_reminder": {
        "template_id": "tmpl-yuyue-tixing",
        "data": {"thing2": "item", "time5": "time", "thing7": "room"},
    },
}


@pytest.fixture
async def oa_services(
    notify_services: Services, platform_sim: PlatformSimulator
) -> AsyncIterator[Services]:
    platform_sim.state.oa_templates = {
        "tmpl-yuyue-chenggong": ["thing1", "time2", "thing3", "character_string4"],
        "tmpl-yuyue-tixing": ["thing2", "time5", "thing7"],
    }
    services = simulated_services(
        notify_services, platform_sim, wechat_oa_templates=TEMPLATES, wechat_oa_template_ids={}
    )
    yield services
    platforms = services.extras.get("platforms")
    if platforms is not None:
        await platforms.aclose()


async def book_as_zhou(services: Services) -> dict:
    app = create_app(services.settings, services=services)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50002))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        zhou = await GraphQLClient(http).as_user("patient.zhou")
        today = datetime.now(services.settings.tz).date()
        slots = (
            await zhou.data(
                SLOTS,
                {
                    "c": "PHYSIO",
                    "f": (today + timedelta(days=3)).isoformat(),
                    "t": (today + timedelta(days=10)).isoformat(),
                },
            )
        )["availableSlots"]
        free = next(s for s in slots if s["remaining"] > 0)
        return (await zhou.data(BOOK, {"s": free["id"]}))["bookAppointment"]


async def dispatches(services: Services) -> list[NoticeDispatch]:
    async with services.db.session() as session:
        return list(
            (
                await session.execute(
                    sa.select(NoticeDispatch)
                    .where(NoticeDispatch.channel == "wechat_oa")
                    .order_by(NoticeDispatch.id)
                )
            ).scalars()
        )


async def test_confirmation_and_day_before_reminder_reach_the_patient_with_the_configured_keys(
    oa_services: Services, platform_sim: PlatformSimulator
) -> None:
    booked = await book_as_zhou(oa_services)
    starts_at = datetime.fromisoformat(booked["startsAt"])
    dispatcher = build_dispatcher(oa_services)
    try:
        await dispatcher.sweep(datetime.now(UTC))
        sent = platform_sim.messages_to("wechat_oa", "demo-openid-zhou")
        assert [m["body"]["template_id"] for m in sent] == ["tmpl-yuyue-chenggong"]
        data = {k: v["value"] for k, v in sent[0]["body"]["data"].items()}
        assert set(data) == {"thing1", "time2", "thing3", "character_string4"}  # no first / remark
        assert data["thing1"] == "理疗"
        local = starts_at.astimezone(oa_services.settings.tz)
        assert data["time2"] == local.strftime("%Y年%m月%d日 %H:%M")
        assert data["character_string4"] and data["character_string4"].isascii()
        assert sent[0]["shown"] == data  # nothing cut by WeChat: it already fits
        assert sent[0]["body"]["client_msg_id"]  # a repeat is dropped by WeChat

        # the day before, the reminder goes by its own template
        await dispatcher.sweep(starts_at - timedelta(days=1) + timedelta(minutes=1))
        sent = platform_sim.messages_to("wechat_oa", "demo-openid-zhou")
        assert [m["body"]["template_id"] for m in sent] == [
            "tmpl-yuyue-chenggong",
            "tmpl-yuyue-tixing",
        ]
        reminder = {k: v["value"] for k, v in sent[1]["body"]["data"].items()}
        assert set(reminder) == {"thing2", "time5", "thing7"}
        assert reminder["thing2"] == "理疗" and reminder["time5"] == data["time2"]
    finally:
        await dispatcher.aclose()
    assert [d.status for d in await dispatches(oa_services)] == ["sent", "sent"]


def test_values_are_fitted_to_their_key_type() -> None:
    long_name = "颈肩腰腿痛综合康复理疗（含中频电疗、超声波、牵引）"
    assert len(fit("thing1", long_name)) == 20 and fit("thing1", long_name).endswith("…")
    assert (
        fit("thing3", "第一行\n第二行") == "第一行 第二行"
    )  # WeChat drops what follows a line break
    assert fit("character_string4", "RX-20261203-0042号") == "RX-20261203-0042"
    assert len(fit("character_string2", "A" * 40)) == 32
    assert fit("phrase3", "已预约成功啦") == "已预约成功"
    assert fit("time2", "2026年12月03日 09:00") == "2026年12月03日 09:00"


async def test_ip_not_whitelisted_waits_for_the_hospital_and_is_not_a_failed_notice(
    oa_services: Services, platform_sim: PlatformSimulator, caplog
) -> None:
    from notifications.delivery.channels.platforms import PLATFORM_BLOCKED

    platform_sim.state.oa_ip_blocked = True
    before = PLATFORM_BLOCKED.labels("wechat_oa", "40164")._value.get()
    await book_as_zhou(oa_services)
    dispatcher = build_dispatcher(oa_services)
    now = datetime.now(UTC)
    try:
        with caplog.at_level("ERROR", logger="bedside.notifications"):
            await dispatcher.sweep(now)
        (waiting,) = await dispatches(oa_services)
        assert waiting.status == "retry" and "40164" in (waiting.last_error or "")
        assert waiting.retry_at is not None and waiting.retry_at >= now + timedelta(minutes=9)
        assert "IP白名单" in caplog.text  # the operator is told what to do
        assert PLATFORM_BLOCKED.labels("wechat_oa", "40164")._value.get() == before + 1
        assert not platform_sim.messages_to("wechat_oa", "demo-openid-zhou")

        # the hospital adds the address; the next sweep after the wait sends it
        platform_sim.state.oa_ip_blocked = False
        await dispatcher.sweep(now + timedelta(minutes=11))
    finally:
        await dispatcher.aclose()
    assert [d.status for d in await dispatches(oa_services)] == ["sent"]
    assert len(platform_sim.messages_to("wechat_oa", "demo-openid-zhou")) == 1


async def test_daily_quota_waits_for_midnight(
    oa_services: Services, platform_sim: PlatformSimulator
) -> None:
    platform_sim.state.oa_quota_exhausted = True
    await book_as_zhou(oa_services)
    dispatcher = build_dispatcher(oa_services)
    now = datetime.now(UTC)
    try:
        await dispatcher.sweep(now)
    finally:
        await dispatcher.aclose()
    (waiting,) = await dispatches(oa_services)
    assert waiting.status == "retry" and "45009" in (waiting.last_error or "")
    midnight = (now.astimezone(oa_services.settings.tz) + timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    assert waiting.retry_at is not None and waiting.retry_at >= midnight


async def test_wecom_untrusted_ip_waits_too(
    notify_services: Services, platform_sim: PlatformSimulator
) -> None:
    from api.domain.people import user_by_username
    from api.models.notifications import NotificationPreference
    from notifications import outbox

    platform_sim.state.wecom_ip_blocked = True
    services = simulated_services(notify_services, platform_sim)
    async with services.db.transaction() as session:
        chief = await user_by_username(session, "chief.wang")
        session.add(NotificationPreference(user_id=chief.id, channels=["wecom"], digest=False))
        await outbox.enqueue(
            session, recipient_id=chief.id, kind="info", title="通知", idempotency_key="ip:1"
        )
    dispatcher = build_dispatcher(services)
    now = datetime.now(UTC)
    try:
        await dispatcher.sweep(now)
        async with services.db.session() as session:
            (waiting,) = (
                await session.execute(
                    sa.select(NoticeDispatch).where(NoticeDispatch.channel == "wecom")
                )
            ).scalars()
        assert waiting.status == "retry" and "60020" in (waiting.last_error or "")
        platform_sim.state.wecom_ip_blocked = False
        await dispatcher.sweep(now + timedelta(minutes=11))
    finally:
        await dispatcher.aclose()
        await services.extras["platforms"].aclose()
    assert len(platform_sim.messages_to("wecom", "chief.wang")) == 1
