"""WeCom's approval card: the button_interaction template card, sending and updating it
within WeCom's per-member limit, and the binding prompt."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.models.base import utcnow
from api.models.bots import BotCard
from api.models.notifications import NoticeDispatch
from api.services import Services
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


async def send_bind_prompt(services: Services, external_id: str, link: str, message: str) -> None:
    try:
        await get_platforms(services).wecom.send_markdown(
            [external_id],
            f"**请先绑定 Bedside 账号** / please bind your Bedside account\n[去绑定 / Bind]({link})",
        )
    except PlatformError as exc:
        log.warning("binding prompt not sent: %s", exc)
