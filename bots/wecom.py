"""WeCom: approval task cards (template_card, button_interaction) and their callback.

Callback (`/bots/wecom/callback?msg_signature=&timestamp=&nonce=`):
- GET with `echostr`: URL verification — the signature over the echostr is checked and
  the decrypted echostr returned as plain text.
- POST: XML `<Encrypt>`; signature, freshness (seconds) and nonce are checked, then the
  plaintext is decrypted with wechatpy's WXBizMsgCrypt. wechatpy 1.8 does not know
  `template_card_event`, so its fields (EventKey, TaskId, ResponseCode, FromUserName) are
  read from the XML here. The answer is an empty body (no passive reply); the card is
  updated through `update_template_card` with the event's ResponseCode after the commit.

The tap's ResponseCode is also its id: WeCom redelivers an event with the same code.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
import xmltodict
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.background import BackgroundTasks
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from wechatpy.utils import to_text

from api.models.base import utcnow
from api.models.bots import BotCard
from api.models.notifications import NoticeDispatch
from api.services import Services
from bots import cards, identity, inbox
from bots.guard import CallbackRefused, check_fresh, claim_nonce, release_nonce
from integrations.platforms import PlatformError, WeComClient, get_platforms

log = logging.getLogger("bedside.bots.wecom")
PLATFORM = "wecom"
FACT_LABELS = [
    ("patient", "患者"),
    ("procedure", "手术"),
    ("grade", "级别"),
    ("emergency", "急诊"),
    ("precheck", "预检"),
    ("deadline", "截止"),
]


def template_card(card: BotCard) -> dict[str, Any]:
    """A button_interaction card; WeCom limits: ≤6 horizontal items, ≤6 buttons."""
    wanted = card.wanted
    facts = wanted.get("facts") or {}
    body: dict[str, Any] = {
        "card_type": "button_interaction",
        "source": {"desc": "Bedside 床旁"},
        "main_title": {
            "title": facts.get("title", "审批任务")[:36],
            "desc": "待您审批 / awaiting your decision",
        },
        "horizontal_content_list": [
            {"keyname": label, "value": str(facts.get(key, "—"))[:26]} for key, label in FACT_LABELS
        ],
        "task_id": card.card_key,
        "button_list": [
            {"text": "同意", "style": 1, "key": "approve"},
            {"text": "退回", "style": 2, "key": "return"},
            {"text": "详情", "style": 3, "type": 1, "url": facts.get("detail_url", "")},
        ],
    }
    if facts.get("detail_url"):
        body["card_action"] = {"type": 1, "url": facts["detail_url"]}
    return body


def replace_name(card: BotCard) -> str:
    wanted = card.wanted
    text = wanted.get("note") or wanted.get("outcome") or "已处理"
    return text.split(" / ")[0][:20] if wanted.get("note") else text[:20]


# 发送应用消息 (https://developer.work.weixin.qq.com/document/path/90236): "每应用对同一个成员
# 不可超过30次/分，1000次/小时，超过部分会被丢弃不下发" — dropped with errcode 0.
MEMBER_PER_MINUTE = 30
MEMBER_PER_HOUR = 1000
TASK_ID_SEPARATOR = "@"  # task_id: digits, letters and "_-@", at most 128 bytes


def now_of(services: Services) -> datetime:
    """The clock cards are sent by (a test may set services.extras["now"])."""
    clock = services.extras.get("now")
    return clock() if clock is not None else utcnow()


def card_key_of(task_id: str) -> str:
    """The card a callback's TaskId belongs to: each send has its own task_id (WeCom refuses
    a task_id used before), `<card key>@<send>`."""
    return task_id.split(TASK_ID_SEPARATOR, 1)[0]


async def check_member_limit(session: AsyncSession, services: Services, card: BotCard) -> None:
    """Refuse to send beyond WeCom's per-member limit (it would drop the card silently);
    the card waits for the sweep after the window. Counts the cards and the app messages
    (notices) sent to this member."""
    now = now_of(services)
    minute, hour = now - timedelta(minutes=1), now - timedelta(hours=1)
    cards_sent = (
        await session.execute(
            sa.select(sa.func.count().filter(BotCard.sent_at > minute), sa.func.count()).where(
                BotCard.platform == PLATFORM,
                BotCard.external_id == card.external_id,
                BotCard.sent_at > hour,
                BotCard.id != card.id,
            )
        )
    ).one()
    notices_sent = (
        await session.execute(
            sa.select(
                sa.func.count().filter(NoticeDispatch.sent_at > minute), sa.func.count()
            ).where(
                NoticeDispatch.channel == PLATFORM,
                NoticeDispatch.status == "sent",
                NoticeDispatch.recipient_id == card.user_id,
                NoticeDispatch.sent_at > hour,
            )
        )
    ).one()
    in_minute, in_hour = cards_sent[0] + notices_sent[0], cards_sent[1] + notices_sent[1]
    if in_minute >= MEMBER_PER_MINUTE or in_hour >= MEMBER_PER_HOUR:
        raise PlatformError(
            PLATFORM,
            "MEMBER_LIMIT",
            f"{in_minute}/min, {in_hour}/h already sent to this member: waits for the sweep",
        )


async def send_card(services: Services, client: WeComClient, card: BotCard) -> str | None:
    """Send the card under a task_id of its own; a member WeCom does not know is no delivery."""
    body = template_card(card)
    body["task_id"] = f"{card.card_key}{TASK_ID_SEPARATOR}{secrets.token_hex(4)}"
    answer = await client.send_template_card([card.external_id], body)
    invalid = str(answer.get("invaliduser") or "")
    if card.external_id in invalid.split("|"):
        raise PlatformError(PLATFORM, "INVALID_USER", f"WeCom does not know {card.external_id}")
    return answer.get("response_code")


async def update_card(services: Services, client: WeComClient, card: BotCard) -> None:
    assert card.response_code
    await client.update_template_card(
        userids=[card.external_id],
        response_code=card.response_code,
        replace_name=replace_name(card),
    )


def read_event(plaintext: str) -> dict[str, Any]:
    return xmltodict.parse(to_text(plaintext))["xml"]


async def callback(request: Request) -> Response:
    services: Services = request.app.state.services
    client = get_platforms(services).wecom
    q = request.query_params
    signature, timestamp, nonce = (
        q.get("msg_signature", ""),
        q.get("timestamp", ""),
        q.get("nonce", ""),
    )
    try:
        check_fresh(services, timestamp)
        crypto = client.callback_crypto()
        if request.method == "GET":
            try:
                echo = crypto.check_signature(signature, timestamp, nonce, q.get("echostr", ""))
            except Exception as exc:  # noqa: BLE001 - any failure here is a refused handshake
                raise CallbackRefused(f"bad echostr ({type(exc).__name__})") from None
            return PlainTextResponse(to_text(echo))
        try:
            plaintext = crypto.decrypt_message(await request.body(), signature, timestamp, nonce)
            event = read_event(plaintext)
        except Exception as exc:  # noqa: BLE001 - a bad signature, key or body: all refused alike
            raise CallbackRefused(f"bad signature or payload ({type(exc).__name__})") from None
        await claim_nonce(services, PLATFORM, timestamp, nonce)
    except CallbackRefused as refused:
        log.warning("WeCom callback refused: %s", refused.reason)
        return PlainTextResponse("forbidden", status_code=403)

    tasks = BackgroundTasks()
    if event.get("MsgType") == "event" and event.get("Event") == "template_card_event":
        response_code = str(event.get("ResponseCode") or "")
        fields = {
            "card_key": card_key_of(str(event.get("TaskId", ""))),
            "external_id": str(event.get("FromUserName", "")),
            "action": str(event.get("EventKey", "")),
            "response_code": response_code or None,
        }
        try:
            tap_id = await inbox.record(
                services,
                PLATFORM,
                "wc:" + hashlib.sha1((response_code or plaintext).encode()).hexdigest(),
                fields,
            )
        except Exception:
            await release_nonce(services, PLATFORM, timestamp, nonce)
            raise
        if tap_id is not None:  # None: WeCom redelivered an event already stored
            inbox.submit(services, tap_id)
    elif event.get("MsgType") == "text" or event.get("Event") == "enter_agent":
        tasks.add_task(prompt_if_unbound, services, str(event.get("FromUserName", "")))
    return PlainTextResponse("", background=tasks)


async def prompt_if_unbound(services: Services, external_id: str) -> None:
    """A member who opens or writes to the app but is not bound gets the binding link."""
    async with services.db.transaction() as session:
        if not external_id or await identity.actor_for(session, PLATFORM, external_id) is not None:
            return
        link = await identity.create_binding_link(session, services, PLATFORM, external_id)
    await after_tap(
        services,
        cards.TapResult(
            "unbound", "请先绑定 Bedside 账号 / please bind your Bedside account", bind_link=link
        ),
        external_id,
    )


async def after_tap(services: Services, result: cards.TapResult, external_id: str) -> None:
    await cards.flusher(services).flush_soon(result.card_ids)
    if result.bind_link:
        try:
            await get_platforms(services).wecom.send_markdown(
                [external_id],
                f"**请先绑定 Bedside 账号** / please bind your Bedside account\n[去绑定 / Bind]({result.bind_link})",
            )
        except PlatformError as exc:
            log.warning("binding prompt not sent: %s", exc)
