"""WeCom: URL verification, template_card_event taps, update_template_card."""

from __future__ import annotations

import time

from api.services import Services
from bots import cards
from tests.bots.helpers import card_of, start_grade4, task_statuses, wecom_tap
from tests.simulators.platforms import wecom_echo


async def test_url_verification_handshake(bots: Services, bot_http):
    params, echo = wecom_echo()
    answer = await bot_http.get("/bots/wecom/callback", params=params)
    assert answer.status_code == 200 and answer.text == echo
    forged, _ = wecom_echo(token="wrong-token")
    assert (await bot_http.get("/bots/wecom/callback", params=forged)).status_code == 403


async def test_card_tap_decides_and_updates_the_buttons(bots: Services, bot_http, platform_sim):
    instance_id = await start_grade4(bots)
    await cards.sweep(bots)
    card = await card_of(bots, instance_id, "chief.wang", "wecom")
    sent = next(
        m for m in platform_sim.messages_to("wecom", "chief.wang") if m["kind"] == "template_card"
    )
    body = sent["body"]["template_card"]
    assert body["card_type"] == "button_interaction"
    assert body["task_id"].split("@")[0] == card.card_key  # each send has its own task_id
    assert [b["text"] for b in body["button_list"]] == ["同意", "退回", "详情"]
    assert {"keyname": "患者", "value": "周*国"} in body["horizontal_content_list"]

    code = platform_sim.event_response_code(card.card_key)
    answer = await wecom_tap(bot_http, card.card_key, "chief.wang", response_code=code)
    assert answer.status_code == 200
    assert await task_statuses(bots, instance_id) == [
        ("head", "approved"),
        ("ma_sign", "pending"),
        ("vp_sign", "pending"),
    ]
    # the event's ResponseCode (single use) replaced the buttons with the outcome
    update = platform_sim.state.wecom_cards[code]
    assert update["used"] and update["updates"][0]["button"]["replace_name"].startswith(
        "已同意 · 王"
    )
    assert (
        len(platform_sim.messages_to("wecom", "ma.zhao")) == 1
        and len(platform_sim.messages_to("wecom", "vp.chen")) == 1
    )

    # the same event redelivered (same ResponseCode): nothing changes twice
    assert (
        await wecom_tap(bot_http, card.card_key, "chief.wang", response_code=code)
    ).status_code == 200
    assert await task_statuses(bots, instance_id) == [
        ("head", "approved"),
        ("ma_sign", "pending"),
        ("vp_sign", "pending"),
    ]
    assert len(update["updates"]) == 1


async def test_forged_expired_replayed_events_are_refused(bots: Services, bot_http, platform_sim):
    instance_id = await start_grade4(bots)
    await cards.sweep(bots)
    card = await card_of(bots, instance_id, "chief.wang", "wecom")
    assert (
        await wecom_tap(bot_http, card.card_key, "chief.wang", token="forged")
    ).status_code == 403
    assert (
        await wecom_tap(bot_http, card.card_key, "chief.wang", timestamp=int(time.time()) - 3600)
    ).status_code == 403
    fixed = {"nonce": "1234567", "timestamp": int(time.time())}
    assert (
        await wecom_tap(
            bot_http, card.card_key, "chief.wang", action="return", response_code="rc-r", **fixed
        )
    ).status_code == 200
    assert (
        await wecom_tap(
            bot_http, card.card_key, "chief.wang", action="approve", response_code="rc-a", **fixed
        )
    ).status_code == 403
    assert await task_statuses(bots, instance_id) == [("head", "returned")]


async def test_unbound_member_gets_a_binding_link_not_an_error(
    bots: Services, bot_http, platform_sim
):
    from tests.simulators.platforms import wecom_callback

    fields = {
        "ToUserName": "wwsimcorp0001",
        "FromUserName": "new-member",
        "CreateTime": int(time.time()),
        "MsgType": "event",
        "Event": "enter_agent",
        "EventKey": "",
        "AgentID": 1000002,
    }
    params, xml = wecom_callback(fields)
    assert (
        await bot_http.post("/bots/wecom/callback", params=params, content=xml.encode())
    ).status_code == 200
    prompt = platform_sim.messages_to("wecom", "new-member")[-1]
    assert prompt["kind"] == "markdown" and "/bind?token=" in prompt["body"]["markdown"]["content"]
    # a bound member entering the app gets nothing
    params, xml = wecom_callback({**fields, "FromUserName": "chief.wang"})
    assert (
        await bot_http.post("/bots/wecom/callback", params=params, content=xml.encode())
    ).status_code == 200
    assert platform_sim.messages_to("wecom", "chief.wang") == []
