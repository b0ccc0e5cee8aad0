"""Who may see and change which treatment rows, by department, in one place.

- Patient rows (orders, appointments, queue entries, records) follow the patient archive's
  rule (`api.domain.patients.visible_patients_clause`): staff see their own department's
  patients; oversight roles and system actors see all.
- A department's service (its items' consent texts, schedules and slots, its therapists'
  worklists, its queues) is managed by that department only (admin and system: all).

Lists and DataLoaders use the `visible_*_clause` functions; single rows go through the
`access_*` helpers, which answer NOT_FOUND both for "not yours" and for "not there".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.audit import record_access
from api.auth import Actor
from api.domain.patients import visible_patients_clause
from api.errors import DomainError, ErrorCode
from api.models.patients import Patient
from api.models.people import Role, User
from api.models.treatments import Appointment, Schedule, Slot, TreatmentItem

# Who runs every department's service (oversight roles only read across departments).
RUNS_ALL = (Role.ADMIN,)


def _system(actor: Actor) -> bool:
    return actor.has_role("system")


def visible_patient_rows_clause(actor: Actor) -> sa.ColumnElement[bool]:
    """Patients the actor may see, as a WHERE clause on `Patient` (system actors: all)."""
    if _system(actor):
        return sa.true()
    return visible_patients_clause(actor)


def visible_patient_ids(actor: Actor) -> sa.Select[int | None]:
    """The same, as a subquery of ids for rows that carry a `patient_id`."""
    return sa.select(col(Patient.id)).where(visible_patient_rows_clause(actor))


def managed_items_clause(actor: Actor) -> sa.ColumnElement[bool]:
    """Items whose service (consent texts, schedules, slots) the actor runs."""
    if _system(actor) or actor.has_role(*RUNS_ALL):
        return sa.true()
    if actor.department_id is None:
        return sa.false()
    return col(TreatmentItem.department_id) == actor.department_id


def managed_users_clause(actor: Actor) -> sa.ColumnElement[bool]:
    """Staff whose worklist and schedules the actor may look at and plan."""
    if _system(actor) or actor.has_role(*RUNS_ALL):
        return sa.true()
    if actor.department_id is None:
        return sa.false()
    return col(User.department_id) == actor.department_id


def manages_item(actor: Actor, item: TreatmentItem) -> bool:
    if _system(actor) or actor.has_role(*RUNS_ALL):
        return True
    return actor.department_id is not None and item.department_id == actor.department_id


async def access_item_to_manage(
    session: AsyncSession, actor: Actor, code: str, *, field: str = "itemCode"
) -> TreatmentItem:
    item = (
        await session.execute(
            sa.select(TreatmentItem).where(
                col(TreatmentItem.code) == code,
                col(TreatmentItem.is_active).is_(True),
                managed_items_clause(actor),
            )
        )
    ).scalar_one_or_none()
    if item is None:
        raise DomainError(
            ErrorCode.NOT_FOUND, "治疗项目不存在 / treatment item not found", field=field
        )
    return item


async def access_staff_member(
    session: AsyncSession, actor: Actor, user_id: int, *, field: str = "therapistId"
) -> User:
    user = (
        await session.execute(
            sa.select(User).where(col(User.id) == user_id, managed_users_clause(actor))
        )
    ).scalar_one_or_none()
    if user is None:
        raise DomainError(ErrorCode.NOT_FOUND, "治疗师不存在 / therapist not found", field=field)
    return user


async def access_schedule(
    session: AsyncSession, actor: Actor, schedule_id: int, *, field: str = "scheduleId"
) -> Schedule:
    schedule = (
        await session.execute(
            sa.select(Schedule)
            .join(TreatmentItem, col(TreatmentItem.id) == col(Schedule.item_id))
            .where(col(Schedule.id) == schedule_id, managed_items_clause(actor))
        )
    ).scalar_one_or_none()
    if schedule is None:
        raise DomainError(ErrorCode.NOT_FOUND, "排班不存在 / schedule not found", field=field)
    return schedule


async def access_queue(
    session: AsyncSession, actor: Actor, queue_key: str, *, field: str = "queueKey"
) -> None:
    """A queue is a therapist's (`therapist:<id>`: their department's) or a room's
    (`room:<name>`: the departments whose slots or appointments use the room; a room no
    department uses yet has an empty queue anyone of the staff may look at)."""
    if _system(actor) or actor.has_role(*RUNS_ALL):
        return
    refused = DomainError(ErrorCode.NOT_FOUND, "队列不存在 / queue not found", field=field)
    kind, _, name = queue_key.partition(":")
    if kind == "therapist":
        try:
            therapist_id = int(name)
        except ValueError:
            raise refused from None
        if therapist_id == 0:
            return  # appointments without a therapist: rows are filtered by patient
        visible = (
            await session.execute(
                sa.select(col(User.id)).where(
                    col(User.id) == therapist_id, managed_users_clause(actor)
                )
            )
        ).first()
        if visible is None:
            raise refused
        return
    if kind != "room" or not name:
        raise refused
    departments = set(
        (
            await session.execute(
                sa.select(col(TreatmentItem.department_id))
                .join(Slot, col(Slot.item_id) == col(TreatmentItem.id))
                .where(col(Slot.room) == name)
                .union(
                    sa.select(col(TreatmentItem.department_id))
                    .join(Appointment, col(Appointment.item_id) == col(TreatmentItem.id))
                    .where(col(Appointment.room) == name)
                )
            )
        ).scalars()
    )
    departments.discard(None)  # an item of no department restricts nobody
    if departments and actor.department_id not in departments:
        raise refused


async def log_patient_access(
    session: AsyncSession,
    actor: Actor,
    resource: str,
    patient_ids: Iterable[int | None],
    *,
    action: str = "query",
    detail: dict[str, Any] | None = None,
) -> None:
    """The access-log row of an answer that carries patients, naming each of them. Every
    domain read or command that hands patient data to a person calls this; the system's
    own work (HIS messages, jobs) is not somebody seeing a patient."""
    if _system(actor):
        return
    await record_access(
        session, actor, resource, action=action, detail=detail, patient_ids=patient_ids
    )
