"""Stream mode's handler, and callbacks without Redis (nonces kept in the database)."""

from __future__ import annotations

from datetime import timedelta

from api.services import Services
from bots import cards
from bots.dingtalk_stream import process_stream_callback
from tests.bots.helpers import (
    assert_dingtalk_success,
    card_of,
    dingtalk_tap,
    start_grade4,
    task_statuses,
)
from tests.simulators.platforms import dingtalk_card_tap


async def test_stream_card_callback_decides_once_per_message_id(bots: Services, platform_sim):
    """The handler the `dingtalk-stream` connection calls (the live connection to DingTalk
    cannot be opened from a test; its frames reach this function unchanged)."""
    instance_id = await start_grade4(bots)
    await cards.sweep(bots)
    head = await card_of(bots, instance_id, "chief.wang")
    data = dingtalk_card_tap(out_track_id=head.card_key, userid="chief.wang", action="approve")
    code, body = await process_stream_callback(bots, data, "msg-1")
    assert code == 200 and body["outcome"] == "decided"
    assert platform_sim.state.cards[head.card_key]["data"]["state"] == "approved"
    code, body = await process_stream_callback(bots, data, "msg-1")  # redelivered
    assert code == 200 and body["outcome"] == "duplicate"
    assert await task_statuses(bots, instance_id) == [
        ("head", "approved"),
        ("ma_sign", "pending"),
        ("vp_sign", "pending"),
    ]


async def test_replay_refused_with_database_nonces(demo: Services, platform_sim):
    from api.domain import approvals
    from tests.approvals.helpers import REVIEW_V1
    from tests.bots.conftest import settled_client
    from tests.simulators.platforms import dingtalk_callback, simulated_settings

    services = Services.build(
        simulated_settings(demo.settings, platform_sim, redis_url=None), db=demo.db
    )
    async with services.db.transaction() as session:
        await approvals.publish_definition(session, REVIEW_V1)
    instance_id = await start_grade4(services)
    await cards.sweep(services)
    head = await card_of(services, instance_id, "chief.wang")
    async with settled_client(services) as http:
        params, body = dingtalk_callback(
            dingtalk_card_tap(out_track_id=head.card_key, userid="chief.wang", action="approve")
        )
        assert_dingtalk_success(
            await http.post("/bots/dingtalk/callback", params=params, json=body)
        )
        assert (
            await http.post("/bots/dingtalk/callback", params=params, json=body)
        ).status_code == 403
        assert_dingtalk_success(
            await dingtalk_tap(http, head.card_key, "chief.wang")
        )  # a retry with its own nonce
    assert await task_statuses(services, instance_id) == [
        ("head", "approved"),
        ("ma_sign", "pending"),
        ("vp_sign", "pending"),
    ]
    await services.extras["platforms"].aclose()


async def test_a_stored_tap_left_by_a_stopped_process_is_decided_by_the_sweep(
    bots: Services, platform_sim
):
    from bots import inbox
    from bots.sweep import sweep

    instance_id = await start_grade4(bots)
    await cards.sweep(bots)
    head = await card_of(bots, instance_id, "chief.wang")
    # the callback stored the tap and answered, then the process stopped before deciding
    tap_id = await inbox.record(
        bots,
        "dingtalk",
        "dt:lost-1",
        {"card_key": head.card_key, "external_id": "chief.wang", "action": "approve"},
    )
    assert tap_id is not None
    assert (
        await inbox.record(bots, "dingtalk", "dt:lost-1", {"card_key": head.card_key}) is None
    )  # a redelivery
    assert await task_statuses(bots, instance_id) == [("head", "pending")]
    assert (
        await inbox.sweep_taps(bots)
    ) == 0  # too fresh: its own process may still be deciding it
    assert await inbox.sweep_taps(bots, older_than=timedelta(0)) == 1
    assert await task_statuses(bots, instance_id) == [
        ("head", "approved"),
        ("ma_sign", "pending"),
        ("vp_sign", "pending"),
    ]
    assert platform_sim.state.cards[head.card_key]["data"]["state"] == "approved"
    assert (await sweep(bots))["taps decided"] == 0


async def test_separate_decider_process_mode(demo: Services, platform_sim, redis_url):
    """With BEDSIDE_BOTS_DECIDE_IN_PROCESS=false the callback only stores and answers;
    `bedside bots work` (here its loop, `inbox.work`) decides."""
    import asyncio

    from api.domain import approvals
    from bots import inbox
    from tests.approvals.helpers import REVIEW_V1
    from tests.bots.conftest import settled_client
    from tests.simulators.platforms import simulated_settings

    services = Services.build(
        simulated_settings(
            demo.settings, platform_sim, redis_url=redis_url, bots_decide_in_process=False
        ),
        db=demo.db,
    )
    async with services.db.transaction() as session:
        await approvals.publish_definition(session, REVIEW_V1)
    instance_id = await start_grade4(services)
    await cards.sweep(services)
    head = await card_of(services, instance_id, "chief.wang")
    async with settled_client(services) as http:
        assert_dingtalk_success(await dingtalk_tap(http, head.card_key, "chief.wang"))
    assert await task_statuses(services, instance_id) == [
        ("head", "pending")
    ]  # stored, not decided

    stop = asyncio.Event()
    worker = asyncio.create_task(inbox.work(services, stop=stop))
    for _ in range(100):
        if (await task_statuses(services, instance_id))[0][1] == "approved":
            break
        await asyncio.sleep(0.05)
    stop.set()
    await worker
    assert await task_statuses(services, instance_id) == [
        ("head", "approved"),
        ("ma_sign", "pending"),
        ("vp_sign", "pending"),
    ]
    assert platform_sim.state.cards[head.card_key]["data"]["state"] == "approved"
    await services.extras["platforms"].aclose()
