"""Web push end to end against a local push service that checks VAPID and decrypts."""

from __future__ import annotations

import base64

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec

from api.app import create_app
from api.domain.people import user_by_username
from api.models.notifications import NoticeDispatch, PushSubscription
from api.services import Services
from notifications import outbox
from notifications.delivery.setup import build_dispatcher
from tests.conftest import GraphQLClient
from tests.notifications.conftest import local
from tests.notifications.harness import ArqHarness, Sink, serve
from tests.simulators.push_service import PushService

REGISTER = """mutation($i: PushSubscriptionInput!) { registerPushSubscription(input: $i) { id endpoint } }"""
PREFS = """mutation($c: [String!]!) { setNotificationPreferences(input: {channels: $c}) { channels } }"""


def vapid_private_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        base64.urlsafe_b64encode(key.private_numbers().private_value.to_bytes(32, "big"))
        .rstrip(b"=")
        .decode()
    )


async def test_web_push_reaches_the_browser_and_a_410_removes_the_subscription(
    notify_services: Services, sink: Sink
) -> None:
    import httpx

    settings = notify_services.settings.model_copy(
        update={"vapid_private_key": vapid_private_key()}
    )
    services = Services(
        settings=settings,
        db=notify_services.db,
        hashing=notify_services.hashing,
        cipher=notify_services.cipher,
    )
    push = PushService()
    async with serve(push.app()) as base:
        push.base_url = base
        transport = httpx.ASGITransport(app=create_app(settings, services=services))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            chief = await GraphQLClient(http).as_user("chief.wang")
            key = (await chief.data("{ vapidPublicKey }"))["vapidPublicKey"]
            browser = push.subscribe(key)  # the PWA subscribes with the server's public key
            registered = await chief.data(
                REGISTER,
                {
                    "i": {
                        "endpoint": browser.endpoint,
                        "p256dh": browser.p256dh,
                        "auth": browser.auth_b64,
                    }
                },
            )
            assert registered["registerPushSubscription"]["endpoint"] == browser.endpoint
            bad = await chief.error(
                REGISTER,
                {"i": {"endpoint": browser.endpoint, "p256dh": "short", "auth": browser.auth_b64}},
            )
            extensions = bad["extensions"]
            assert (extensions["code"], extensions["field"]) == ("VALIDATION", "p256dh")
            assert set(extensions["messages"]) == {"zh", "en"}
            await chief.data(PREFS, {"c": ["webpush", "webhook"]})

        async with services.db.transaction() as session:
            user = await user_by_username(session, "chief.wang")
            await outbox.enqueue(
                session,
                recipient_id=user.id,
                kind="penalty.issued",
                title="奖惩通知书 / penalty notice",
                body="请查阅",
                idempotency_key="wp:1",
                critical=True,
            )
        async with ArqHarness(services, build_dispatcher(services)) as h:
            await h.sweep(local(2026, 12, 7, 9, 0))
            assert push.rejections == []
            assert [m["title"] for m in browser.received] == ["奖惩通知书 / penalty notice"]
            assert browser.received[0]["urgency"] == "high" and browser.received[0][
                "url"
            ].startswith("http")
            assert sink.requests == []  # web push worked, so the next channel was not needed

            browser.gone = True  # the user revoked permission: the push service says 410
            async with services.db.transaction() as session:
                await outbox.enqueue(
                    session,
                    recipient_id=user.id,
                    kind="info",
                    title="第二条",
                    idempotency_key="wp:2",
                )
            await h.sweep(local(2026, 12, 7, 9, 30))

    async with services.db.session() as session:
        assert (await session.execute(sa.select(PushSubscription))).scalars().all() == []
        statuses = (
            await session.execute(
                sa.select(NoticeDispatch.channel, NoticeDispatch.status).order_by(NoticeDispatch.id)
            )
        ).all()
    assert [tuple(s) for s in statuses] == [
        ("webpush", "sent"),
        ("webpush", "gone"),
        ("webhook", "sent"),
    ]
    assert [m["title"] for m in sink.messages.values()] == [
        "第二条"
    ]  # fell back to the next channel
