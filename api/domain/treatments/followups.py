"""Follow-ups (随访) after a session or a course, per the item's rule.

    item.followup_rule = {"trigger": "course" | "session", "offset_days": [7, 30],
                          "questionnaire": [template fields …]}

Each task has a due date and the questionnaire; a notice for the patient is written with
`deliver_after` = the due date, and the patient answers later (Official Account / PWA).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor
from api.domain.treatments import templates
from api.domain.treatments.access import log_patient_access
from api.domain.treatments.common import is_staff, load_patient, now_or
from api.domain.treatments.notices import enqueue_later
from api.errors import DomainError, ErrorCode, forbidden
from api.models.patients import Patient
from api.models.people import Role
from api.models.treatments import FollowUp, TreatmentItem, TreatmentOrder, TreatmentRecord
from notifications import outbox


async def create_follow_ups(
    session: AsyncSession,
    *,
    item: TreatmentItem,
    record: TreatmentRecord,
    order: TreatmentOrder,
    course_done: bool,
    now: datetime,
) -> list[FollowUp]:
    rule = item.followup_rule or {}
    trigger = rule.get("trigger")
    if trigger == "session":
        source = f"record:{record.id}"
    elif trigger == "course" and course_done:
        source = f"course:{order.course_id}" if order.course_id else f"order:{order.id}"
    else:
        return []
    created = []
    patient = await session.get(Patient, record.patient_id)
    for days in rule.get("offset_days") or [7]:
        key = f"{source}:d{int(days)}"
        if (
            await session.execute(sa.select(FollowUp.id).where(FollowUp.source_key == key))
        ).first():
            continue
        task = FollowUp(
            patient_id=record.patient_id,
            item_id=item.id,  # type: ignore[arg-type]
            order_id=order.id,
            course_id=order.course_id,
            record_id=record.id,
            source_key=key,
            due_at=now + timedelta(days=int(days)),
            questionnaire=list(rule.get("questionnaire") or []),
            created_at=now,
        )
        session.add(task)
        await session.flush()
        created.append(task)
        if patient is not None and patient.user_id is not None:
            await enqueue_later(
                session,
                deliver_after=task.due_at,
                recipient_id=patient.user_id,
                kind="followup.due",
                title="治疗随访 / treatment follow-up",
                body=f"{item.name}：请填写随访问卷 / please answer the follow-up questionnaire",
                idempotency_key=f"followup.due:{task.id}",
                payload={"follow_up_id": task.id},
                subject_type="follow_up",
                subject_id=task.id,
            )
    return created


async def access_follow_up(session: AsyncSession, actor: Actor, follow_up_id: int) -> FollowUp:
    task = await session.get(FollowUp, follow_up_id)
    if task is None:
        raise DomainError(ErrorCode.NOT_FOUND, "随访不存在 / follow-up not found", field="id")
    await load_patient(session, actor, task.patient_id)
    return task


async def answer_follow_up(
    session: AsyncSession,
    task: FollowUp,
    answers: dict[str, Any],
    *,
    actor: Actor,
    idempotency_key: str | None = None,
    now: datetime | None = None,
) -> FollowUp:
    """The patient (or staff on the phone) answers; answering twice is refused."""
    patient = await session.get(Patient, task.patient_id)
    assert patient is not None
    if not is_staff(actor) and not (
        actor.has_role(Role.PATIENT) and patient.user_id == actor.user_id
    ):
        raise forbidden("只能填写本人的随访 / only your own follow-up")
    if task.status == "answered":
        if idempotency_key:
            return task
        raise DomainError(
            ErrorCode.ALREADY_DECIDED, "随访已填写 / the follow-up was already answered", field="id"
        )
    if task.status != "open":
        raise DomainError(ErrorCode.CONFLICT, "随访已关闭 / the follow-up is closed", field="id")
    task.answers = templates.validate(task.questionnaire, answers, prefix="answers")
    task.status = "answered"
    task.answered_at = now_or(now)
    await session.flush()
    assert task.id is not None
    await outbox.cancel_for_subject(session, "follow_up", task.id)
    return task


async def follow_ups_for_patient(
    session: AsyncSession, patient_id: int, *, status: str | None = None
) -> list[FollowUp]:
    stmt = sa.select(FollowUp).where(FollowUp.patient_id == patient_id).order_by(FollowUp.due_at)
    if status:
        stmt = stmt.where(FollowUp.status == status)
    return list((await session.execute(stmt)).scalars())


async def due_follow_ups(session: AsyncSession, actor: Actor, *, until: datetime) -> list[FollowUp]:
    """Open follow-ups due by `until` of the patients the staff member may see."""
    from api.domain.patients import visible_patients_clause

    if not is_staff(actor):
        raise forbidden()
    stmt = (
        sa.select(FollowUp)
        .join(Patient, Patient.id == FollowUp.patient_id)
        .where(FollowUp.status == "open", FollowUp.due_at <= until, visible_patients_clause(actor))
        .order_by(FollowUp.due_at)
        .limit(500)
    )
    rows = list((await session.execute(stmt)).scalars())
    await log_patient_access(
        session,
        actor,
        "follow_ups",
        [r.patient_id for r in rows],
        detail={"due_until": until.isoformat()},
    )
    return rows
