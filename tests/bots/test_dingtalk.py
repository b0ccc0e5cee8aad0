"""DingTalk task cards, end to end: the sweep sends cards, signed and encrypted taps decide."""

from __future__ import annotations

import asyncio
import time

from api.services import Services
from bots import cards
from tests.bots.helpers import (
    assert_dingtalk_success,
    card_of,
    dingtalk_tap,
    start_grade4,
    status_of,
    task_statuses,
)


async def test_grade4_surgery_approved_entirely_from_cards(bots: Services, bot_http, platform_sim):
    from tests.conftest import GraphQLClient
    from tests.surgery.helpers import SUBMIT, application, patient_id

    qian = await GraphQLClient(bot_http).as_user("dr.qian")
    submitted = await qian.data(
        SUBMIT, {"i": application(await patient_id(bots, "P0004"), "52.7", diagnosis="胰头癌")}
    )
    instance_id = int(submitted["submitSurgeryApplication"]["id"])
    await cards.sweep(bots)  # the worker's sweep: cards for tasks started elsewhere (GraphQL)
    head_card = await card_of(bots, instance_id, "chief.wang")
    sent = platform_sim.state.cards[head_card.card_key]
    assert sent["userid"] == "chief.wang" and sent["callback_type"] == "HTTP"
    facts = sent["data"]
    assert (
        facts["grade"] == "四级"
        and facts["actionable"] == "true"
        and facts["emergency"].startswith("否")
    )
    assert "*" in facts["patient"] and facts["precheck"].startswith("通过")
    assert facts["procedure"] != "—" and facts["detail_url"].startswith(
        "dingtalk://dingtalkclient/page/link?url="
    )
    assert (
        await card_of(bots, instance_id, "chief.wang", "wecom") is not None
    )  # the same task on WeCom

    assert_dingtalk_success(await dingtalk_tap(bot_http, head_card.card_key, "chief.wang"))
    shown = platform_sim.state.cards[head_card.card_key]["data"]
    assert shown["state"] == "approved" and shown["actionable"] == "false"
    assert (
        shown["outcome"].startswith("已同意 · 王")
        and len(shown["outcome"].rsplit(" · ", 1)[1]) == 5
    )  # HH:MM

    ma_card = await card_of(bots, instance_id, "ma.zhao")
    vp_card = await card_of(bots, instance_id, "vp.chen")
    assert (
        ma_card.card_key in platform_sim.state.cards
        and vp_card.card_key in platform_sim.state.cards
    )

    # medical affairs and the vice-president tap at the same moment
    first, second = await asyncio.gather(
        dingtalk_tap(bot_http, ma_card.card_key, "ma.zhao"),
        dingtalk_tap(bot_http, vp_card.card_key, "vp.chen"),
    )
    assert_dingtalk_success(first)
    assert_dingtalk_success(second)
    assert await status_of(bots, instance_id) == "approved"
    assert [status for _, status in await task_statuses(bots, instance_id)] == ["approved"] * 3
    for card in (ma_card, vp_card):
        assert platform_sim.state.cards[card.card_key]["data"]["state"] == "approved"


async def test_platform_retry_changes_nothing_twice(bots: Services, bot_http, platform_sim):
    instance_id = await start_grade4(bots)
    await cards.sweep(bots)
    head_card = await card_of(bots, instance_id, "chief.wang")
    assert_dingtalk_success(await dingtalk_tap(bot_http, head_card.card_key, "chief.wang"))
    history_before = await task_statuses(bots, instance_id)
    updates_before = len(platform_sim.state.cards[head_card.card_key]["updates"])
    # DingTalk redelivers the same callback (new nonce and signature, same content)
    assert_dingtalk_success(await dingtalk_tap(bot_http, head_card.card_key, "chief.wang"))
    assert await task_statuses(bots, instance_id) == history_before
    assert len(platform_sim.state.cards[head_card.card_key]["updates"]) == updates_before
    assert len([c for c in platform_sim.state.cards.values() if c["userid"] == "vp.chen"]) == 1


async def test_forged_expired_and_replayed_callbacks_are_refused(
    bots: Services, bot_http, platform_sim
):
    from tests.simulators.platforms import dingtalk_callback, dingtalk_card_tap

    instance_id = await start_grade4(bots)
    await cards.sweep(bots)
    head_card = await card_of(bots, instance_id, "chief.wang")
    tap = dingtalk_card_tap(out_track_id=head_card.card_key, userid="chief.wang", action="approve")

    forged_params, forged_body = dingtalk_callback(tap, token="not-the-callback-token")
    assert (
        await bot_http.post("/bots/dingtalk/callback", params=forged_params, json=forged_body)
    ).status_code == 403

    expired_params, expired_body = dingtalk_callback(
        tap, timestamp_ms=int((time.time() - 3600) * 1000)
    )
    assert (
        await bot_http.post("/bots/dingtalk/callback", params=expired_params, json=expired_body)
    ).status_code == 403
    assert await task_statuses(bots, instance_id) == [("head", "pending")]

    params, body = dingtalk_callback(
        dingtalk_card_tap(out_track_id=head_card.card_key, userid="chief.wang", action="return")
    )
    assert_dingtalk_success(
        await bot_http.post("/bots/dingtalk/callback", params=params, json=body)
    )
    assert await task_statuses(bots, instance_id) == [("head", "returned")]
    # the very same request again: a replay
    assert (
        await bot_http.post("/bots/dingtalk/callback", params=params, json=body)
    ).status_code == 403
    assert await task_statuses(bots, instance_id) == [("head", "returned")]


async def test_not_assignee_and_decided_elsewhere_update_the_card_only(
    bots: Services, bot_http, platform_sim
):
    from tests.approvals.helpers import decide

    instance_id = await start_grade4(bots)
    await cards.sweep(bots)
    head_card = await card_of(bots, instance_id, "chief.wang")

    # someone else taps the head's card (e.g. a forwarded card): nothing changes
    assert_dingtalk_success(await dingtalk_tap(bot_http, head_card.card_key, "dr.li"))
    assert await task_statuses(bots, instance_id) == [("head", "pending")]
    assert "不是该任务的审批人" in platform_sim.state.cards[head_card.card_key]["data"]["note"]

    # decided in the PWA meanwhile; then the card is tapped
    async with bots.db.transaction() as session:
        await decide(session, instance_id, "chief.wang", "reject")
    assert_dingtalk_success(await dingtalk_tap(bot_http, head_card.card_key, "chief.wang"))
    assert await task_statuses(bots, instance_id) == [("head", "rejected")]
    shown = platform_sim.state.cards[head_card.card_key]["data"]
    assert shown["state"] == "rejected" and "别处" in shown["note"]

    # an unbound DingTalk user gets a binding prompt, not an error
    assert_dingtalk_success(await dingtalk_tap(bot_http, head_card.card_key, "stranger-001"))
    prompt = platform_sim.messages_to("dingtalk", "stranger-001")[-1]
    assert (
        prompt["kind"] == "work_notice.action_card"
        and "bind%3Ftoken%3D" in prompt["body"]["action_card"]["single_url"]
    )
    assert await task_statuses(bots, instance_id) == [("head", "rejected")]


async def test_in_app_login_exchanges_the_code(bots: Services, bot_http, platform_sim):
    code = platform_sim.auth_code("dingtalk", "chief.wang")
    answer = (await bot_http.post("/bots/dingtalk/login", json={"code": code})).json()
    me = await bot_http.post(
        "/graphql",
        json={"query": "{ me { username } }"},
        headers={"Authorization": f"Bearer {answer['token']}"},
    )
    assert me.json()["data"]["me"]["username"] == "chief.wang"
    # the code works once
    assert (await bot_http.post("/bots/dingtalk/login", json={"code": code})).status_code == 401

    # an unbound user gets a one-time binding link; opening it signed in binds them
    code = platform_sim.auth_code("dingtalk", "new-dingtalk-user")
    answer = (await bot_http.post("/bots/dingtalk/login", json={"code": code})).json()
    assert answer["token"] is None and "/bind?token=" in answer["bindUrl"]
    link_token = answer["bindUrl"].split("token=")[1]
    login = await bot_http.post(
        "/graphql",
        json={
            "query": 'mutation { login(username: "dr.qian", password: "bedside-demo") { token } }'
        },
    )
    bearer = {"Authorization": f"Bearer {login.json()['data']['login']['token']}"}
    assert (
        await bot_http.post("/bots/bind", json={"token": link_token}, headers=bearer)
    ).status_code == 200
    assert (
        await bot_http.post("/bots/bind", json={"token": link_token}, headers=bearer)
    ).status_code == 404  # once
    code = platform_sim.auth_code("dingtalk", "new-dingtalk-user")
    assert (await bot_http.post("/bots/dingtalk/login", json={"code": code})).json()[
        "username"
    ] == "dr.qian"


async def test_double_tap_at_once_decides_once(bots: Services, bot_http, platform_sim):
    """Two different taps on one card at the same moment (同意 and 退回): one wins, the
    other finds it decided and its card says so."""
    instance_id = await start_grade4(bots)
    await cards.sweep(bots)
    head_card = await card_of(bots, instance_id, "chief.wang")
    answers = await asyncio.gather(
        dingtalk_tap(bot_http, head_card.card_key, "chief.wang", "approve"),
        dingtalk_tap(bot_http, head_card.card_key, "chief.wang", "return"),
    )
    for answer in answers:
        assert_dingtalk_success(answer)
    statuses = await task_statuses(bots, instance_id)
    assert statuses[0][1] in {"approved", "returned"}
    assert len([s for s in statuses if s[0] == "head"]) == 1
    shown = platform_sim.state.cards[head_card.card_key]["data"]
    assert shown["state"] == statuses[0][1] and "别处" in shown["note"]


async def test_decided_in_the_pwa_then_the_sweep_updates_the_cards(bots: Services, platform_sim):
    from tests.approvals.helpers import decide

    instance_id = await start_grade4(bots)
    await cards.sweep(bots)
    head_card = await card_of(bots, instance_id, "chief.wang")
    async with bots.db.transaction() as session:
        await decide(session, instance_id, "chief.wang", "approve")
    summary = await cards.sweep(bots)
    assert summary["sent"] >= 3  # the head's two cards updated, new cards for MA and VP
    assert platform_sim.state.cards[head_card.card_key]["data"]["state"] == "approved"
    assert (await card_of(bots, instance_id, "vp.chen")).card_key in platform_sim.state.cards
    assert (await cards.sweep(bots)) == {"queued": 0, "sent": 0}  # nothing left to do
