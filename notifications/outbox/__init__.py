"""The transactional outbox: domain services write notices here, workers deliver them.

`enqueue` runs inside the caller's transaction, so a notice exists if and only if the
change that caused it committed. A repeated idempotency key returns the first notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from api.models.base import utcnow
from api.models.notices import Notice
from notifications.outbox import wakeup
from notifications.outbox.policies import default_policies

# Built once (compiled once): the PostgreSQL insert-unless-the-key-exists of `enqueue`.
_UPSERT = (
    pg_insert(Notice).on_conflict_do_nothing(index_elements=["idempotency_key"]).returning(Notice)
)
_INSERT_NEW = pg_insert(Notice.__table__).on_conflict_do_nothing(index_elements=["idempotency_key"])  # type: ignore[attr-defined]
# Columns a new notice starts without (the model's defaults).
_UNSET: dict[str, Any] = {
    "read_at": None,
    "cancelled_at": None,
    "delivered_at": None,
    "reminders_sent": 0,
    "last_reminded_at": None,
    "escalated_at": None,
    "escalation_notice_id": None,
    "read_via": None,
}


@dataclass(frozen=True)
class NoticeTexts:
    """A notice's title and body in each language (the body may have several lines)."""

    title_zh: str
    title_en: str
    body_zh: str = ""
    body_en: str = ""

    def as_dict(self) -> dict[str, dict[str, str]]:
        return {
            "title": {"zh": self.title_zh, "en": self.title_en},
            "body": {"zh": self.body_zh, "en": self.body_en},
        }


TEXTS_KEY = "texts"


def _with_texts(
    title: str, body: str, payload: dict[str, Any] | None, texts: NoticeTexts | None
) -> tuple[str, str, dict[str, Any] | None]:
    if texts is None:
        return title, body, payload
    title = title or f"{texts.title_zh} / {texts.title_en}"
    if not body and (texts.body_zh or texts.body_en):
        body = f"{texts.body_zh}\n{texts.body_en}" if texts.body_en else texts.body_zh
    return title[:200], body[:2000], {**(payload or {}), TEXTS_KEY: texts.as_dict()}


async def enqueue(
    session: AsyncSession,
    *,
    recipient_id: int,
    kind: str,
    idempotency_key: str,
    title: str = "",
    body: str = "",
    payload: dict[str, Any] | None = None,
    subject_type: str | None = None,
    subject_id: int | None = None,
    critical: bool = False,
    sender_id: int | None = None,
    policy: str | None = None,
    due_at: datetime | None = None,
    texts: NoticeTexts | None = None,
) -> Notice:
    """Write a notice; it is delivered after the caller's transaction commits.

    `texts` gives the title and body in each language; the notice keeps them (for the app,
    which shows one language) and the combined "中文 / English" as its title and body (for
    the platforms' one-text messages).

    `policy` names a reminder policy of `notifications/outbox/policies.yaml` (default: by kind);
    `sender_id` lets the sender see delivery and read receipts; `due_at` delays the first
    delivery (default: at once).
    """
    title, body, payload = _with_texts(title, body, payload, texts)
    if session.bind.dialect.name == "postgresql":
        # One round trip, no model validation: insert unless the key exists, and get the
        # row back as a Notice of this session.
        values = _row(
            recipient_id=recipient_id,
            kind=kind,
            title=title,
            idempotency_key=idempotency_key,
            body=body,
            payload=payload,
            subject_type=subject_type,
            subject_id=subject_id,
            critical=critical,
            sender_id=sender_id,
            policy=policy,
            due_at=due_at,
        )
        inserted = (await session.execute(_UPSERT, [values])).scalar_one_or_none()
        if inserted is None:
            return await _existing(session, idempotency_key)
        wakeup.mark(session.sync_session)
        return inserted
    existing = (
        await session.execute(sa.select(Notice).where(Notice.idempotency_key == idempotency_key))
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    chosen = default_policies().latest(policy) if policy else default_policies().for_kind(kind)
    notice = Notice(
        recipient_id=recipient_id,
        kind=kind,
        title=title,
        body=body,
        payload=payload or {},
        idempotency_key=idempotency_key,
        subject_type=subject_type,
        subject_id=subject_id,
        critical=critical,
        sender_id=sender_id,
    )
    notice.policy_key, notice.policy_version = chosen.key, chosen.version
    if due_at is not None:
        notice.due_at = due_at
    session.add(notice)
    await session.flush()
    wakeup.mark(session.sync_session)
    return notice


async def enqueue_many(session: AsyncSession, notices: list[dict[str, Any]]) -> None:
    """`enqueue` for many notices whose rows the caller does not need back (keyword
    arguments of `enqueue` each). PostgreSQL: one multi-row INSERT ... ON CONFLICT DO
    NOTHING (an existing key, even one repeated in the list, keeps its first notice)."""
    if not notices:
        return
    if session.bind.dialect.name != "postgresql":
        for kwargs in notices:
            await enqueue(session, **kwargs)
        return
    await session.execute(_INSERT_NEW, [_row(**kwargs) for kwargs in notices])
    wakeup.mark(session.sync_session)


def _row(
    *,
    recipient_id: int,
    kind: str,
    idempotency_key: str,
    title: str = "",
    body: str = "",
    payload: dict[str, Any] | None = None,
    subject_type: str | None = None,
    subject_id: int | None = None,
    critical: bool = False,
    sender_id: int | None = None,
    policy: str | None = None,
    due_at: datetime | None = None,
    texts: NoticeTexts | None = None,
) -> dict[str, Any]:
    """The full row of a new notice, with the model's defaults."""
    title, body, payload = _with_texts(title, body, payload, texts)
    chosen = default_policies().latest(policy) if policy else default_policies().for_kind(kind)
    now = utcnow()
    return {
        **_UNSET,
        "recipient_id": recipient_id,
        "kind": kind,
        "title": title,
        "body": body,
        "payload": payload or {},
        "idempotency_key": idempotency_key,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "critical": critical,
        "sender_id": sender_id,
        "policy_key": chosen.key,
        "policy_version": chosen.version,
        "created_at": now,
        "due_at": due_at if due_at is not None else now,
    }


async def _existing(session: AsyncSession, idempotency_key: str) -> Notice:
    return (
        await session.execute(sa.select(Notice).where(Notice.idempotency_key == idempotency_key))
    ).scalar_one()


async def cancel_for_subject(
    session: AsyncSession,
    subject_type: str,
    subject_id: int,
    *,
    kinds: list[str] | None = None,
    payload_ids: tuple[str, list[int]] | None = None,
) -> int:
    """Cancel unread notices about a closed subject (e.g. an approval instance that ended).

    `payload_ids` = (key, ids) narrows it to the notices whose payload names one of `ids`
    under `key` (e.g. the reminders about tasks that were decided while the subject runs on).
    """
    stmt = (
        sa.update(Notice)
        .where(
            Notice.subject_type == subject_type,
            Notice.subject_id == subject_id,
            Notice.read_at.is_(None),
            Notice.cancelled_at.is_(None),
        )
        .values(cancelled_at=utcnow(), due_at=None)
    )
    if kinds:
        stmt = stmt.where(Notice.kind.in_(kinds))
    if payload_ids is not None:
        key, ids = payload_ids
        if not ids:
            return 0
        stmt = stmt.where(Notice.payload[key].as_integer().in_(ids))
    result = await session.execute(stmt)
    return result.rowcount or 0
