"""Approval task cards on DingTalk and WeCom: what they say, when they change, sending.

A card row (`BotCard`) is written in the same transaction as the decision that changes
what it should say (`wanted`); `flush` sends and updates cards after the commit, and the
sweep (`sweep`, run by the worker or `bedside bots sweep`) retries what failed and sends
cards for tasks created elsewhere (GraphQL, escalation). So a callback answers as soon as
its transaction commits, and a lost process loses no card.

`decide_from_card` is the one path from a tap to the approvals service, shared by the
DingTalk HTTP callback, DingTalk Stream mode and WeCom.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import record_access
from api.auth import Actor
from api.crypto import mask_name
from api.domain import approvals
from api.domain.people import external_id_for
from api.errors import DomainError, ErrorCode
from api.models.approvals import ApprovalInstance, ApprovalTask, TaskStatus
from api.models.base import utcnow
from api.models.bots import BotCard, BotTap
from api.models.patients import Patient
from api.models.people import User
from api.services import Services
from bots import identity
from integrations.platforms import PlatformError, get_platforms

log = logging.getLogger("bedside.bots")

PLATFORMS = ("dingtalk", "wecom")
SWEEP_BATCH = 200

OUTCOME_WORDS = {
    TaskStatus.APPROVED: "已同意",
    TaskStatus.REJECTED: "已驳回",
    TaskStatus.RETURNED: "已退回",
    TaskStatus.TRANSFERRED: "已转交",
}
INSTANCE_WORDS = {
    "approved": "审批已通过",
    "rejected": "审批已驳回",
    "returned": "已退回申请人",
    "withdrawn": "申请已撤回",
    "blocked": "审批已中止",
}
GRADE_WORDS = {1: "一级", 2: "二级", 3: "三级", 4: "四级"}


def card_key(task_id: int, user_id: int) -> str:
    """Stable per task and holder: a resend after a crash finds the same card."""
    return f"bedside-t{task_id}-u{user_id}"


def local_time(settings: Any, at: datetime | None, fmt: str = "%H:%M") -> str:
    return at.astimezone(settings.tz).strftime(fmt) if at else ""


# -- what a card says -------------------------------------------------------------------
async def task_facts(
    session: AsyncSession, services: Services, task: ApprovalTask, instance: ApprovalInstance
) -> dict[str, str]:
    """The application's key facts, patient masked. Reads data keys the surgery form uses."""
    data = instance.data or {}
    patient_name = ""
    if data.get("patient_id") is not None:
        patient = await session.get(Patient, int(data["patient_id"]))
        patient_name = mask_name(patient.name) if patient else ""
    grade = data.get("grade")
    precheck = instance.precheck or {}
    if precheck:
        passed = precheck.get("passed", True)
        findings = precheck.get("findings") or []
        precheck_text = (
            "通过 / passed"
            if passed and not findings
            else f"未通过 {len(findings)} 项 / {len(findings)} finding(s)"
        )
    else:
        precheck_text = "—"
    definition_name = ""
    try:
        _, definition = await approvals.definition_by_id(session, instance.definition_id)
        definition_name = definition.body.name.zh
    except Exception:  # noqa: BLE001 - the title falls back to the kind
        definition_name = instance.kind
    return {
        "title": f"{definition_name} #{instance.id}",
        "patient": patient_name or "—",
        "procedure": str(
            data.get("procedure_name") or data.get("procedure") or data.get("procedure_code") or "—"
        ),
        "grade": GRADE_WORDS.get(int(grade), str(grade))
        if isinstance(grade, int | str) and str(grade).isdigit()
        else "—",
        "emergency": "急诊 / emergency" if data.get("emergency") else "否 / no",
        "precheck": precheck_text,
        "deadline": local_time(services.settings, task.due_at, "%m-%d %H:%M") or "—",
        "detail_url": f"{services.settings.public_url.rstrip('/')}/tasks/{task.id}",
    }


async def wanted_state(
    session: AsyncSession,
    services: Services,
    task: ApprovalTask,
    instance: ApprovalInstance,
    *,
    facts: dict[str, str] | None = None,
    note: str = "",
) -> dict[str, Any]:
    """The card's content for the task as it stands: buttons while pending, else the outcome."""
    if task.status == TaskStatus.PENDING:
        state, outcome = "pending", ""
    elif task.status in OUTCOME_WORDS:
        decider = await session.get(User, task.assignee_id)
        name = decider.display_name if decider else ""
        state = str(task.status)
        outcome = f"{OUTCOME_WORDS[TaskStatus(task.status)]} · {name} · {local_time(services.settings, task.decided_at)}"
    else:  # cancelled: the instance ended elsewhere (rejected, withdrawn, another signer)
        state = "closed"
        outcome = f"{INSTANCE_WORDS.get(instance.status, '已结束')} / closed"
    wanted: dict[str, Any] = {
        "state": state,
        "outcome": outcome,
        "facts": facts
        if facts is not None
        else await task_facts(session, services, task, instance),
    }
    if note:
        wanted["note"] = note
    return wanted


# -- queueing (inside the caller's transaction) ------------------------------------------
def enabled_platforms(services: Services) -> list[str]:
    """Platforms whose card setup is complete (an incomplete one sends no card at all,
    rather than cards the platform refuses again at every sweep)."""
    platforms = get_platforms(services)
    clients = {p: getattr(platforms, p) for p in PLATFORMS}
    return [p for p, c in clients.items() if getattr(c, "cards_configured", c.configured)]


async def refresh_instance_cards(
    session: AsyncSession,
    services: Services,
    instance_id: int,
    *,
    notes: dict[int, str] | None = None,
    directory_lookup: bool = False,
) -> list[int]:
    """Bring every card of the instance up to date and add cards for new pending tasks.

    Returns the ids of card rows that need sending (for `flush` after the commit).
    `notes` adds a line to particular cards (by card id), e.g. "not your task".
    `directory_lookup` asks the platform's directory for unbound assignees' ids by mobile
    (the sweep does; a callback does not call out while it holds its transaction).
    """
    instance = await session.get(ApprovalInstance, instance_id)
    if instance is None:
        return []
    notes = notes or {}
    tasks = {
        t.id: t
        for t in (
            await session.execute(
                sa.select(ApprovalTask).where(ApprovalTask.instance_id == instance_id)
            )
        ).scalars()
    }
    cards = list(
        (
            await session.execute(sa.select(BotCard).where(BotCard.instance_id == instance_id))
        ).scalars()
    )
    dirty: list[int] = []
    facts_cache: dict[int, dict[str, str]] = {}
    for card in cards:
        task = tasks.get(card.task_id)
        if task is None:
            continue
        facts = card.wanted.get("facts") or facts_cache.get(task.id or 0)
        wanted = await wanted_state(
            session, services, task, instance, facts=facts, note=notes.get(card.id or 0, "")
        )
        if wanted != card.wanted:
            card.wanted = wanted
            card.dirty = True
        if card.dirty:
            dirty.append(card.id or 0)
    have = {(c.platform, c.task_id) for c in cards}
    for task in tasks.values():
        if task.status != TaskStatus.PENDING:
            continue
        for platform in enabled_platforms(services):
            if (platform, task.id) not in have:
                card_id = await _new_card(
                    session, services, platform, task, instance, facts_cache, directory_lookup
                )
                if card_id:
                    dirty.append(card_id)
    await session.flush()
    return dirty


async def _new_card(
    session: AsyncSession,
    services: Services,
    platform: str,
    task: ApprovalTask,
    instance: ApprovalInstance,
    facts_cache: dict[int, dict[str, str]],
    directory_lookup: bool,
) -> int | None:
    assignee = await session.get(User, task.assignee_id)
    if assignee is None or assignee.id is None:
        return None
    if directory_lookup:
        external_id = await identity.external_id_or_bind(session, services, platform, assignee)
    else:
        external_id = await external_id_for(session, assignee.id, platform)
    if external_id is None:
        return None  # not on this platform (yet): the PWA and other channels still reach them
    assert task.id is not None and instance.id is not None and assignee.id is not None
    facts = facts_cache.get(task.id) or await task_facts(session, services, task, instance)
    facts_cache[task.id] = facts
    card = BotCard(
        platform=platform,
        card_key=card_key(task.id, assignee.id),
        task_id=task.id,
        instance_id=instance.id,
        user_id=assignee.id,
        external_id=external_id,
        wanted=await wanted_state(session, services, task, instance, facts=facts),
    )
    session.add(card)
    await session.flush()
    if (instance.data or {}).get("patient_id") is not None:
        # The masked name leaves Bedside for the platform: an export in the access log.
        await record_access(
            session,
            Actor.from_user(assignee, via=platform),
            "approval_card",
            action="export",
            detail={
                "task_id": task.id,
                "patient_id": instance.data["patient_id"],
                "platform": platform,
            },
        )
    return card.id


# -- sending (after the commit) ----------------------------------------------------------
async def flush(services: Services, card_ids: list[int] | None = None) -> int:
    """Send or update dirty cards (the given ones, or all); returns how many went out."""
    done = 0
    async with services.db.transaction() as session:
        stmt = (
            sa.select(BotCard)
            .where(BotCard.dirty.is_(True))
            .order_by(BotCard.id)
            .limit(SWEEP_BATCH)
        )
        if card_ids is not None:
            if not card_ids:
                return 0
            stmt = stmt.where(BotCard.id.in_(card_ids))
        if services.db.is_postgres:
            stmt = stmt.with_for_update(skip_locked=True)  # two flushers never send one card twice
        for card in (await session.execute(stmt)).scalars():
            try:
                await _deliver(services, card, session)
                done += 1
            except PlatformError as exc:
                card.attempts += 1
                card.last_error = str(exc)[:500]
                log.warning("card %s on %s not delivered: %s", card.card_key, card.platform, exc)
    return done


async def _deliver(services: Services, card: BotCard, session: AsyncSession) -> None:
    from bots import dingtalk, wecom  # the renderers live with their platform

    platforms = get_platforms(services)
    now = wecom.now_of(services)
    if card.shown is None:
        if card.wanted.get("state") != "pending":
            card.dirty = False  # decided before it was ever shown: nothing to send
            card.shown = card.wanted
            return
        if card.platform == "dingtalk":
            await dingtalk.send_card(services, platforms.dingtalk, card)
        else:
            await wecom.check_member_limit(session, services, card)  # beyond it: dropped silently
            card.response_code = await wecom.send_card(services, platforms.wecom, card)
        card.sent_at = now
    elif card.shown != card.wanted:
        if card.platform == "dingtalk":
            await dingtalk.update_card(services, platforms.dingtalk, card)
        else:
            if not card.response_code:
                raise PlatformError(
                    "wecom", "NO_RESPONSE_CODE", "no response code left to update this card"
                )
            await wecom.update_card(services, platforms.wecom, card)
            card.response_code = None  # single use
        card.updated_at = now
    card.shown = card.wanted
    card.dirty = False
    card.last_error = None


class Flusher:
    """Coalesces the card sends of callbacks arriving together into one flush per tick.

    The ids are only a hint kept for a few milliseconds: the `dirty` rows in the database
    are the truth, and the sweep sends whatever a stopped process left behind.
    """

    def __init__(self, services: Services, delay: float = 0.02) -> None:
        self.services = services
        self.delay = delay
        self.pending: set[int] = set()
        self.batch: asyncio.Future[None] | None = None

    async def flush_soon(self, card_ids: list[int]) -> None:
        """Returns once a flush that includes these cards has run."""
        if not card_ids:
            return
        self.pending.update(card_ids)
        if self.batch is None:
            self.batch = asyncio.get_running_loop().create_future()
            asyncio.get_running_loop().create_task(self._run(self.batch))
        await asyncio.shield(self.batch)

    async def _run(self, batch: asyncio.Future[None]) -> None:
        await asyncio.sleep(self.delay)
        ids, self.pending, self.batch = sorted(self.pending), set(), None
        try:
            await flush(self.services, ids)
        except Exception:  # noqa: BLE001 - the sweep retries; callers must not fail
            log.exception("card flush failed")
        finally:
            batch.set_result(None)


def flusher(services: Services) -> Flusher:
    existing = services.extras.get("card_flusher")
    if existing is None:
        existing = services.extras["card_flusher"] = Flusher(services)
    return existing


async def sweep(services: Services) -> dict[str, int]:
    """Cards for pending tasks that have none yet, updates for cards whose task was decided
    elsewhere, then every unsent change."""
    platforms = enabled_platforms(services)
    queued = 0
    if platforms:
        async with services.db.transaction() as session:
            carded = (
                sa.select(BotCard.task_id)
                .where(BotCard.platform.in_(platforms))
                .group_by(BotCard.task_id)
                .having(sa.func.count() >= len(platforms))
            )
            # Newest first: an assignee who is on no platform keeps their task "uncarded"
            # for good, and such tasks must not crowd out new ones.
            instance_ids = (
                (
                    await session.execute(
                        sa.select(ApprovalTask.instance_id)
                        .where(
                            ApprovalTask.status == TaskStatus.PENDING,
                            ApprovalTask.id.not_in(carded),
                        )
                        .group_by(ApprovalTask.instance_id)
                        .order_by(sa.func.max(ApprovalTask.id).desc())
                        .limit(SWEEP_BATCH)
                    )
                )
                .scalars()
                .all()
            )
            # cards still showing buttons for tasks decided elsewhere (PWA, escalation, withdrawal)
            stale_ids = (
                (
                    await session.execute(
                        sa.select(BotCard.instance_id)
                        .join(ApprovalTask, ApprovalTask.id == BotCard.task_id)
                        .where(
                            ApprovalTask.status != TaskStatus.PENDING,
                            BotCard.wanted["state"].as_string() == "pending",
                        )
                        .group_by(BotCard.instance_id)
                        .limit(SWEEP_BATCH)
                    )
                )
                .scalars()
                .all()
            )
            for instance_id in sorted({*instance_ids, *stale_ids}):
                queued += len(
                    await refresh_instance_cards(
                        session, services, instance_id, directory_lookup=True
                    )
                )
    sent = await flush(services)
    return {"queued": queued, "sent": sent}


# -- a tap ---------------------------------------------------------------------------------
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
