"""DingTalk approval cards in both callback modes, as DingTalk documents them.

HTTP mode: `bedside dingtalk register-card-callback` binds the route key to our URL with
an apiSecret; the card is created with callbackType HTTP and that route key; a tap is a
plain JSON POST to the registered URL signed with x-ddpaas-signature (互动卡片 › 事件回调,
https://open.dingtalk.com/document/development/event-callback-card). Stream mode: the
card is created with callbackType STREAM and the tap arrives on the stream topic
`/v1.0/card/instances/callback`.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

import sqlalchemy as sa

from api.models.bots import BotCard, BotTap
from api.services import Services
from bots import cards
from bots.dingtalk_stream import process_stream_callback
from tests.bots.conftest import settled_client
from tests.bots.helpers import card_of, start_grade4, task_statuses
from tests.simulators.platforms import (
    CARD_API_SECRET,
    DINGTALK,
    dingtalk_card_signature,
    dingtalk_card_tap,
    simulated_settings,
)

CALLBACK_PATH = "/bots/dingtalk/card-callback"


def cli_env(services: Services, sim: Any, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "BEDSIDE_DATABASE_URL": services.settings.database_url,
        "BEDSIDE_SECRET_KEY": "x" * 40,
        "BEDSIDE_PUBLIC_URL": "https://bedside.hospital.example",
        "BEDSIDE_DINGTALK_APP_KEY": DINGTALK["app_key"],
        "BEDSIDE_DINGTALK_APP_SECRET": DINGTALK["app_secret"],
        "BEDSIDE_DINGTALK_API_BASE": sim.url,
        "BEDSIDE_DINGTALK_CARD_TEMPLATE_ID": "sim-approval-card.schema",
        "BEDSIDE_DINGTALK_CARD_CALLBACK_ROUTE_KEY": "bedside-approval",
        "BEDSIDE_DINGTALK_CARD_CALLBACK_SECRET": CARD_API_SECRET,
        "BEDSIDE_DINGTALK_USE_STREAM": "false",
        **extra,
    }
    env.pop("BEDSIDE_REDIS_URL", None)
    return env


async def bedside(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "api.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def tap_counts(services: Services) -> int:
    async with services.db.session() as session:
        return (await session.execute(sa.select(sa.func.count()).select_from(BotTap))).scalar_one()


async def test_http_mode_registered_route_signed_tap_decides(
    bots: Services, bot_http, platform_sim
):
    registered = await bedside(cli_env(bots, platform_sim), "dingtalk", "register-card-callback")
    assert registered.returncode == 0, registered.stderr
    route = platform_sim.state.card_routes["bedside-approval"]
    assert route == {
        "callbackUrl": "https://bedside.hospital.example" + CALLBACK_PATH,
        "apiSecret": CARD_API_SECRET,
    }

    instance_id = await start_grade4(bots)
    await cards.sweep(bots)
    head = await card_of(bots, instance_id, "chief.wang")
    sent = platform_sim.state.cards[head.card_key]
    assert sent["callback_type"] == "HTTP" and sent["route_key"] == "bedside-approval"
    assert head.sent_at is not None and head.shown is not None

    tap = platform_sim.dingtalk_tap_request(head.card_key, "chief.wang", "approve")
    assert tap["mode"] == "HTTP" and tap["url"].endswith(CALLBACK_PATH)
    answer = await bot_http.post(CALLBACK_PATH, headers=tap["headers"], json=tap["json"])
    assert answer.status_code == 200, answer.text
    assert await task_statuses(bots, instance_id) == [
        ("head", "approved"),
        ("ma_sign", "pending"),
        ("vp_sign", "pending"),
    ]
    assert platform_sim.state.cards[head.card_key]["data"]["state"] == "approved"

    # DingTalk retries the same request: answered, decided once
    again = await bot_http.post(CALLBACK_PATH, headers=tap["headers"], json=tap["json"])
    assert again.status_code == 200
    assert [s for _, s in await task_statuses(bots, instance_id)][0] == "approved"
    assert await tap_counts(bots) == 1


async def test_http_mode_refuses_forged_stale_and_replayed_requests(
    bots: Services, bot_http, platform_sim
):
    instance_id = await start_grade4(bots)
    await cards.sweep(bots)
    head = await card_of(bots, instance_id, "chief.wang")
    body = dingtalk_card_tap(out_track_id=head.card_key, userid="chief.wang", action="approve")
    now = str(int(time.time() * 1000))

    forged = {
        "x-ddpaas-signature-timestamp": now,
        "x-ddpaas-signature": dingtalk_card_signature("not-the-api-secret", now),
    }
    stale_ts = str(int((time.time() - 3600) * 1000))
    stale = {
        "x-ddpaas-signature-timestamp": stale_ts,
        "x-ddpaas-signature": dingtalk_card_signature(CARD_API_SECRET, stale_ts),
    }
    for headers in (forged, stale, {}):
        refused = await bot_http.post(CALLBACK_PATH, headers=headers, json=body)
        assert refused.status_code == 403
    # the event-subscription envelope is not what this URL takes
    assert (await bot_http.post(CALLBACK_PATH, json={"encrypt": "x"})).status_code == 403
    assert await task_statuses(bots, instance_id) == [("head", "pending")]
    assert await tap_counts(bots) == 0

    # the signature covers the timestamp only: the same headers with another body are a replay
    signed = {
        "x-ddpaas-signature-timestamp": now,
        "x-ddpaas-signature": dingtalk_card_signature(CARD_API_SECRET, now),
    }
    returned = dingtalk_card_tap(out_track_id=head.card_key, userid="chief.wang", action="return")
    assert (await bot_http.post(CALLBACK_PATH, headers=signed, json=returned)).status_code == 200
    assert await task_statuses(bots, instance_id) == [("head", "returned")]
    replay = await bot_http.post(CALLBACK_PATH, headers=signed, json=body)
    assert replay.status_code == 403
    assert await task_statuses(bots, instance_id) == [("head", "returned")]
    assert await tap_counts(bots) == 1


async def test_register_keeps_another_url_until_forced(bots: Services, platform_sim):
    platform_sim.state.card_routes["bedside-approval"] = {
        "callbackUrl": "https://old.hospital.example/cb",
        "apiSecret": "old",
    }
    env = cli_env(bots, platform_sim)
    kept = await bedside(env, "dingtalk", "register-card-callback")
    assert kept.returncode == 3 and "--force" in kept.stderr
    assert platform_sim.state.card_routes["bedside-approval"]["callbackUrl"].startswith(
        "https://old."
    )
    forced = await bedside(env, "dingtalk", "register-card-callback", "--force")
    assert forced.returncode == 0, forced.stderr
    assert platform_sim.state.card_routes["bedside-approval"] == {
        "callbackUrl": "https://bedside.hospital.example" + CALLBACK_PATH,
        "apiSecret": CARD_API_SECRET,
    }


async def test_stream_mode_is_the_default_and_one_tap_decides(
    demo: Services, platform_sim, redis_url
):
    from api.domain import approvals
    from tests.approvals.helpers import REVIEW_V1

    base = simulated_settings(demo.settings, platform_sim, redis_url=redis_url)
    settings = base.model_copy(
        update={"dingtalk_use_stream": type(base)().dingtalk_use_stream}  # the default
    )
    assert settings.dingtalk_use_stream is True
    services = Services.build(settings, db=demo.db)
    async with services.db.transaction() as session:
        await approvals.publish_definition(session, REVIEW_V1)
    try:
        instance_id = await start_grade4(services)
        await cards.sweep(services)
        head = await card_of(services, instance_id, "chief.wang")
        sent = platform_sim.state.cards[head.card_key]
        assert sent["callback_type"] == "STREAM" and sent["route_key"] is None
        tap = platform_sim.dingtalk_tap_request(head.card_key, "chief.wang", "approve")
        assert tap["mode"] == "STREAM"
        code, body = await process_stream_callback(services, tap["data"], "stream-msg-1")
        assert code == 200 and body["outcome"] == "decided"
        assert [s for _, s in await task_statuses(services, instance_id)][0] == "approved"
        assert platform_sim.state.cards[head.card_key]["data"]["state"] == "approved"
    finally:
        await services.extras["platforms"].aclose()


async def test_action_read_from_params_before_action_ids(bots: Services, bot_http, platform_sim):
    """The component id in actionIds is the template's, not the action (the doc's example
    has actionIds ["1"] with params {"action": "accept"})."""
    instance_id = await start_grade4(bots)
    await cards.sweep(bots)
    head = await card_of(bots, instance_id, "chief.wang")
    now = str(int(time.time() * 1000))
    body = dingtalk_card_tap(
        out_track_id=head.card_key, userid="chief.wang", action="return", component_id="approve"
    )
    headers = {
        "x-ddpaas-signature-timestamp": now,
        "x-ddpaas-signature": dingtalk_card_signature(CARD_API_SECRET, now),
    }
    assert (await bot_http.post(CALLBACK_PATH, headers=headers, json=body)).status_code == 200
    assert await task_statuses(bots, instance_id) == [("head", "returned")]


async def test_a_card_that_reached_no_one_is_not_delivered(bots: Services, platform_sim):
    platform_sim.state.dingtalk_unreachable.add("chief.wang")
    instance_id = await start_grade4(bots)
    await cards.sweep(bots)
    head = await card_of(bots, instance_id, "chief.wang")
    assert head.dirty and head.shown is None and head.sent_at is None
    assert "NOT_DELIVERED" in (head.last_error or "") and head.attempts == 1

    # once the hospital adds the user to the robot's visible range, the sweep delivers it
    # (the card exists at DingTalk already: it is delivered again, not created twice)
    platform_sim.state.dingtalk_unreachable.clear()
    await cards.sweep(bots)
    head = await card_of(bots, instance_id, "chief.wang")
    assert not head.dirty and head.sent_at is not None and head.last_error is None
    assert platform_sim.state.cards[head.card_key]["delivered_to"] == ["chief.wang"]
    assert (
        len([m for m in platform_sim.messages_to("dingtalk", "chief.wang") if m["kind"] == "card"])
        == 1
    )


async def test_incomplete_card_setup_sends_nothing_and_says_why(demo: Services, platform_sim):
    settings = simulated_settings(demo.settings, platform_sim, dingtalk_card_template_id=None)
    services = Services.build(settings, db=demo.db)
    from api.domain import approvals
    from bots.dingtalk import card_setup_message
    from tests.approvals.helpers import REVIEW_V1

    async with services.db.transaction() as session:
        await approvals.publish_definition(session, REVIEW_V1)
    try:
        instance_id = await start_grade4(services)
        await cards.sweep(services)
        await cards.sweep(services)
        assert "BEDSIDE_DINGTALK_CARD_TEMPLATE_ID" in (card_setup_message(services) or "")
        async with services.db.session() as session:
            dingtalk_cards = (
                await session.execute(
                    sa.select(sa.func.count())
                    .select_from(BotCard)
                    .where(BotCard.platform == "dingtalk", BotCard.instance_id == instance_id)
                )
            ).scalar_one()
        assert dingtalk_cards == 0
        assert not [c for c in platform_sim.state.calls if c["path"].startswith("/v1.0/card")]
        assert await card_of(services, instance_id, "chief.wang", "wecom") is not None
    finally:
        await services.extras["platforms"].aclose()

    # HTTP mode without the apiSecret is incomplete too; the stream command refuses to start
    stream = await bedside(
        cli_env(demo, platform_sim, BEDSIDE_DINGTALK_CARD_TEMPLATE_ID=""), "dingtalk-stream"
    )
    assert stream.returncode != 0 and "BEDSIDE_DINGTALK_CARD_TEMPLATE_ID" in stream.stderr
    settings = simulated_settings(demo.settings, platform_sim, dingtalk_card_callback_secret=None)
    assert "BEDSIDE_DINGTALK_CARD_CALLBACK_SECRET" in (
        card_setup_message(Services.build(settings, db=demo.db)) or ""
    )


async def test_http_callback_without_a_configured_secret_is_refused(demo: Services, platform_sim):
    settings = simulated_settings(demo.settings, platform_sim, dingtalk_card_callback_secret=None)
    services = Services.build(settings, db=demo.db)
    now = str(int(time.time() * 1000))
    headers = {
        "x-ddpaas-signature-timestamp": now,
        "x-ddpaas-signature": dingtalk_card_signature("", now),
    }
    body = dingtalk_card_tap(out_track_id="bedside-t1-u1", userid="chief.wang", action="approve")
    async with settled_client(services) as client:
        assert (await client.post(CALLBACK_PATH, headers=headers, json=body)).status_code == 403
    assert await tap_counts(services) == 0
