"""The platform clients against the local simulator, tokens shared through real Redis."""

from __future__ import annotations

import json

import pytest
from redis.asyncio import Redis

from integrations.platforms import RateLimited, RedisTokenStore, build_platforms
from tests.conftest import redis_test_url
from tests.simulators.platforms import (
    DINGTALK,
    WECOM,
    dingtalk_callback,
    simulated_settings,
    wecom_callback,
)


@pytest.fixture
async def redis():
    url = redis_test_url()
    if url is None:
        pytest.skip("Redis is not available")
    client = Redis.from_url(url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
async def platforms(settings, platform_sim, redis):
    built = build_platforms(
        simulated_settings(settings, platform_sim),
        store=RedisTokenStore(redis),
        backoff_seconds=0.01,
    )
    yield built
    await built.aclose()


async def test_two_clients_share_one_token_through_redis(settings, platform_sim, redis):
    first = build_platforms(
        simulated_settings(settings, platform_sim), store=RedisTokenStore(redis)
    )
    second = build_platforms(
        simulated_settings(settings, platform_sim), store=RedisTokenStore(redis)
    )
    try:
        await first.dingtalk.send_text_notice(["chief.wang"], "第一条 / first")
        await second.dingtalk.send_text_notice(["chief.wang"], "第二条 / second")
        await second.wecom.send_text(["chief.wang"], "企业微信 / wecom")
        await first.wecom.send_text(["chief.wang"], "企业微信 / wecom again")
    finally:
        await first.aclose()
        await second.aclose()
    assert platform_sim.state.token_fetches["dingtalk"] == 1
    assert platform_sim.state.token_fetches["wecom"] == 1
    assert first.dingtalk.token_fetches + second.dingtalk.token_fetches == 1
    assert len(platform_sim.messages_to("dingtalk", "chief.wang")) == 2


async def test_concurrent_first_calls_fetch_one_token(platforms, platform_sim):
    import asyncio

    await asyncio.gather(
        *(platforms.wechat_oa.send_text("openid-1", f"第{i}条") for i in range(10))
    )
    assert platform_sim.state.token_fetches["wechat_oa"] == 1
    assert len(platform_sim.messages_to("wechat_oa", "openid-1")) == 10


async def test_expired_token_is_renewed_once(platforms, platform_sim):
    await platforms.dingtalk.send_text_notice(["dr.li"], "一 / one")
    platform_sim.expire_tokens()  # the platform revoked it early: the cache still holds it
    await platforms.dingtalk.send_markdown_notice(["dr.li"], "标题", "**二** / two")
    assert platform_sim.state.token_fetches["dingtalk"] == 2
    kinds = [m["kind"] for m in platform_sim.messages_to("dingtalk", "dr.li")]
    assert kinds == ["work_notice.text", "work_notice.markdown"]


async def test_rate_limit_is_retried_then_given_up(platforms, platform_sim):
    await platforms.wecom.access_token()
    platform_sim.rate_limit_next("wecom", 2)
    await platforms.wecom.send_markdown(["ma.zhao"], "**待审批** / pending")
    assert len(platform_sim.messages_to("wecom", "ma.zhao")) == 1

    platform_sim.rate_limit_next("wecom", 10)
    with pytest.raises(RateLimited):
        await platforms.wecom.send_text(["ma.zhao"], "不会送达 / never delivered")
    assert len(platform_sim.messages_to("wecom", "ma.zhao")) == 1


async def test_dingtalk_card_created_and_updated(platforms, platform_sim):
    platform_sim.rate_limit_next("dingtalk", 1)  # the v1.0 API's 403 QPS answer is retried too
    await platforms.dingtalk.create_and_deliver_card(
        out_track_id="task-1-u1",
        userid="chief.wang",
        card_data={"title": "手术审批", "status": "pending"},
    )
    await platforms.dingtalk.update_card(
        out_track_id="task-1-u1",
        card_data={"status": "approved", "outcome": "已同意 · 王主任 · 10:42"},
    )
    card = platform_sim.state.cards["task-1-u1"]
    assert card["userid"] == "chief.wang"
    assert card["data"]["status"] == "approved" and card["data"]["outcome"].startswith("已同意")


async def test_wecom_template_card_and_single_use_update(platforms, platform_sim):
    from integrations.platforms import PlatformError

    card = {
        "card_type": "button_interaction",
        "main_title": {"title": "手术审批", "desc": "四级手术"},
        "task_id": "task-7",
        "button_list": [
            {"text": "同意", "style": 1, "key": "approve:7"},
            {"text": "退回", "style": 2, "key": "return:7"},
        ],
    }
    answer = await platforms.wecom.send_template_card(["vp.chen"], card)
    code = answer["response_code"]
    await platforms.wecom.update_template_card(
        userids=["vp.chen"], response_code=code, replace_name="已同意"
    )
    with pytest.raises(PlatformError):
        await platforms.wecom.update_template_card(
            userids=["vp.chen"], response_code=code, replace_name="再来一次"
        )


async def test_official_account_template_and_oauth(platforms, platform_sim):
    msgid = await platforms.wechat_oa.send_template_message(
        "demo-openid-zhou",
        "tmpl-booking-confirmed",
        {"thing1": "理疗", "time2": "2026-11-23 09:00"},
    )
    assert msgid
    sent = platform_sim.messages_to("wechat_oa", "demo-openid-zhou")[0]["body"]
    assert sent["data"]["thing1"] == {"value": "理疗"}
    code = platform_sim.auth_code("wechat_oa", "demo-openid-zhou")
    assert await platforms.wechat_oa.openid_for_code(code) == "demo-openid-zhou"
    url = platforms.wechat_oa.authorize_url("https://bedside.example/oa/oauth", state="s1")
    assert "scope=snsapi_base" in url and url.endswith("#wechat_redirect")


def test_simulated_callbacks_decrypt_with_the_sdks(settings, platform_sim):
    """The simulator's independent implementation of the platforms' crypto matches the SDKs'."""
    built = build_platforms(simulated_settings(settings, platform_sim))
    params, body = dingtalk_callback({"EventType": "check_url"})
    plain = built.dingtalk.callback_crypto().decrypt_message(
        body, params["msg_signature"], params["timestamp"], params["nonce"]
    )
    assert json.loads(plain) == {"EventType": "check_url"}

    params, xml = wecom_callback(
        {"ToUserName": WECOM["corp_id"], "MsgType": "event", "Event": "template_card_event"}
    )
    plain = built.wecom.callback_crypto().decrypt_message(
        xml, params["msg_signature"], params["timestamp"], params["nonce"]
    )
    assert "template_card_event" in plain
    assert DINGTALK["app_key"]
