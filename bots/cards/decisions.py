"""A tap on a card: `decide_from_card` is the one path from a tap to the approvals
service, shared by the DingTalk HTTP callback, DingTalk Stream mode and WeCom."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.domain import approvals
from api.errors import DomainError, ErrorCode
from api.models.approvals import TaskStatus
from api.models.base import utcnow
from api.models.bots import BotCard, BotTap
from api.services import Services
from bots import identity
from bots.cards.facts import OUTCOME_WORDS
from bots.cards.refresh import refresh_instance_cards


@dataclass
class TapResult:
    outcome: str  # decided | replayed | not_assignee | already_decided | closed | unbound | unknown_card | invalid
    message: str
    card_ids: list[int] = field(default_factory=list)
    bind_link: str | None = None
    task_status: str | None = None


DECISIONS = {"approve": "approve", "return": "return", "reject": "reject"}
CARD_RETURN_COMMENT = (
    "从卡片退回，请补充材料后重新提交 / returned from the card: please complete and resubmit"
)


async def decide_from_card(
    services: Services,
    *,
    platform: str,
    card_key_value: str,
    external_id: str,
    action: str,
    callback_id: str,
    comment: str | None = None,
    response_code: str | None = None,
) -> TapResult:
    """One tap in its own transaction (Stream mode, tests); see `decide_tap`."""
    async with services.db.transaction() as session:
        return await decide_tap(
            session,
            services,
            platform=platform,
            card_key_value=card_key_value,
            external_id=external_id,
            action=action,
            callback_id=callback_id,
            comment=comment,
            response_code=response_code,
        )


async def decide_stored_tap(services: Services, tap_id: int) -> tuple[str, str, TapResult] | None:
    """Decide a tap from the inbox and mark it processed in the same transaction."""
    async with services.db.transaction() as session:
        stmt = sa.select(BotTap).where(BotTap.id == tap_id, BotTap.processed_at.is_(None))
        stmt = stmt.with_for_update(skip_locked=True) if services.db.is_postgres else stmt
        tap = (await session.execute(stmt)).scalar_one_or_none()
        if tap is None:
            return None
        fields = tap.tap
        result = await decide_tap(
            session,
            services,
            platform=tap.platform,
            card_key_value=str(fields.get("card_key", "")),
            external_id=str(fields.get("external_id", "")),
            action=str(fields.get("action", "")),
            callback_id=tap.callback_id,
            comment=fields.get("comment"),
            response_code=fields.get("response_code"),
        )
        tap.processed_at = utcnow()
        tap.outcome = result.outcome
        return tap.platform, str(fields.get("external_id", "")), result


async def decide_tap(
    session: AsyncSession,
    services: Services,
    *,
    platform: str,
    card_key_value: str,
    external_id: str,
    action: str,
    callback_id: str,
    comment: str | None = None,
    response_code: str | None = None,
) -> TapResult:
    """One tap: who, which task, the decision through the approvals service, the cards.

    Runs in the caller's transaction; the card changes it queues are flushed after the
    commit (`TapResult.card_ids`).
    """
    decision = DECISIONS.get(action)
    card = (
        await session.execute(
            sa.select(BotCard).where(
                BotCard.platform == platform, BotCard.card_key == card_key_value
            )
        )
    ).scalar_one_or_none()
    if card is None:
        return TapResult("unknown_card", "卡片已失效 / this card is no longer valid")
    actor = await identity.actor_for(session, platform, external_id)
    if response_code and actor is not None and actor.user_id == card.user_id:
        # WeCom: the newest code updates this user's card. Only the holder's own tap may
        # replace it; anyone else's code would point the holder's update at their card.
        card.response_code = response_code
    if actor is None:
        link = await identity.create_binding_link(session, services, platform, external_id)
        return TapResult(
            "unbound",
            "请先绑定 Bedside 账号 / please bind your Bedside account first",
            bind_link=link,
        )
    if decision is None:
        return TapResult("invalid", "未知操作 / unknown action")
    notes: dict[int, str] = {}
    result: TapResult
    try:
        task = await approvals.access_task_for_decision(session, actor, card.task_id)
        async with session.begin_nested():  # a refused decision leaves nothing behind
            task = await approvals.decide_task(
                session,
                task,
                actor=actor,
                decision=decision,
                comment=comment or (CARD_RETURN_COMMENT if decision == "return" else None),
                idempotency_key=callback_id,
            )
        result = TapResult(
            "decided",
            OUTCOME_WORDS.get(TaskStatus(task.status), "已处理") + " / done",
            task_status=task.status,
        )
    except DomainError as exc:
        # The card exists, so NOT_FOUND from the access rule means "not yours" (a task is
        # never deleted); FORBIDDEN means the tapper is not staff at all.
        if exc.code in (ErrorCode.FORBIDDEN, ErrorCode.NOT_FOUND):
            notes[card.id or 0] = (
                "您不是该任务的审批人，未做任何更改 / not your task: nothing changed"
            )
            result = TapResult("not_assignee", notes[card.id or 0])
        elif exc.code == ErrorCode.ALREADY_DECIDED:
            notes[card.id or 0] = "该任务已在别处处理 / already decided elsewhere"
            result = TapResult("already_decided", notes[card.id or 0])
        elif exc.code in (ErrorCode.INSTANCE_CLOSED, ErrorCode.PRIVILEGE_BLOCKED):
            notes[card.id or 0] = "审批已结束 / the approval has ended"
            result = TapResult("closed", notes[card.id or 0])
        else:
            result = TapResult("invalid", exc.message)
        if notes:
            card.dirty = True  # show the note even if the state itself did not change
    result.card_ids = await refresh_instance_cards(session, services, card.instance_id, notes=notes)
    return result
