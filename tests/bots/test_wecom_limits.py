"""WeCom cards within WeCom's documented limits (发送应用消息,
https://developer.work.weixin.qq.com/document/path/90236): at most 30 messages a minute and
1,000 an hour per app and member, the excess dropped with errcode 0; a task_id is never
used twice; a member WeCom does not know comes back in `invaliduser`."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from api.models.base import utcnow
from api.models.bots import BotCard
from api.services import Services
from bots import cards
from tests.bots.helpers import card_of, start_grade4


async def wecom_cards(services: Services) -> list[BotCard]:
    async with services.db.session() as session:
        return list(
            (
                await session.execute(
                    sa.select(BotCard).where(BotCard.platform == "wecom").order_by(BotCard.id)
                )
            ).scalars()
        )


async def test_a_burst_of_40_tasks_reaches_one_approver_as_40_cards(
    bots: Services, platform_sim
) -> None:
    offset = timedelta()
    bots.extras["now"] = lambda: utcnow() + offset
    for _ in range(40):
        await start_grade4(bots)  # the head of general surgery is the first signer of each
    await cards.sweep(bots)
    to_wang = [
        m for m in platform_sim.messages_to("wecom", "chief.wang") if m["kind"] == "template_card"
    ]
    assert len(to_wang) == 30 and not platform_sim.state.wecom_dropped
    waiting = [c for c in await wecom_cards(bots) if c.external_id == "chief.wang" and c.dirty]
    assert len(waiting) == 10 and all("MEMBER_LIMIT" in (c.last_error or "") for c in waiting)

    # a minute later (both clocks) the sweep sends the rest
    offset = timedelta(seconds=61)
    platform_sim.state.clock_offset = 61
    await cards.sweep(bots)
    to_wang = [
        m for m in platform_sim.messages_to("wecom", "chief.wang") if m["kind"] == "template_card"
    ]
    assert len(to_wang) == 40 and not platform_sim.state.wecom_dropped
    sent = [c for c in await wecom_cards(bots) if c.external_id == "chief.wang"]
    assert len(sent) == 40 and not any(c.dirty for c in sent)
    task_ids = [m["body"]["template_card"]["task_id"] for m in to_wang]
    assert len(set(task_ids)) == 40


async def test_a_resent_card_gets_a_new_task_id(bots: Services, platform_sim) -> None:
    instance_id = await start_grade4(bots)
    platform_sim.rate_limit_next("wecom", 10)  # every attempt of this sweep refused
    await cards.sweep(bots)
    card = await card_of(bots, instance_id, "chief.wang", "wecom")
    assert card.dirty and card.attempts == 1
    # an attempt whose answer was lost reached WeCom with some task_id; the next one
    # must not repeat it (WeCom refuses a task_id used before)
    platform_sim.state.rate_limits.clear()
    platform_sim.state.wecom_task_ids.add(card.card_key)
    await cards.sweep(bots)
    card = await card_of(bots, instance_id, "chief.wang", "wecom")
    assert not card.dirty and card.last_error is None
    (sent,) = [
        m for m in platform_sim.messages_to("wecom", "chief.wang") if m["kind"] == "template_card"
    ]
    assert sent["body"]["template_card"]["task_id"] != card.card_key


async def test_a_member_wecom_does_not_know_is_not_delivered(bots: Services, platform_sim) -> None:
    platform_sim.state.wecom_unknown_users.add("chief.wang")
    instance_id = await start_grade4(bots)
    await cards.sweep(bots)
    card = await card_of(bots, instance_id, "chief.wang", "wecom")
    assert card.dirty and card.sent_at is None and "INVALID_USER" in (card.last_error or "")
    assert not platform_sim.messages_to("wecom", "chief.wang")
