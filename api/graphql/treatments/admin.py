"""Running the service: schedules, exceptions, slot generation, consent texts, no-shows."""

from __future__ import annotations

from datetime import date

import strawberry

from api.domain.treatments import appointments, records, schedules
from api.domain.treatments.common import item_by_code, local_day, now_or
from api.graphql.context import Info
from api.graphql.permissions import HasRole
from api.graphql.scalars import parse_id
from api.graphql.treatments.types import Appointment, ConsentText
from api.models.people import Role

Managers = HasRole(Role.DEPT_HEAD)  # and admin


@strawberry.input(description="排班 / a schedule pattern")
class ScheduleInput:
    item_code: str
    start_time: str
    end_time: str
    valid_from: date
    valid_to: date | None = None
    therapist_id: strawberry.ID | None = None
    room: str = ""
    weekdays: list[int] = strawberry.field(default_factory=lambda: [0, 1, 2, 3, 4])
    slot_minutes: int = 30
    capacity: int = 1
    working_days_only: bool = True


@strawberry.type
class ScheduleResult:
    schedule_id: strawberry.ID
    slots_created: int


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[Managers],
        description="新建排班并生成时段 / create a schedule and its slots",
    )
    async def create_treatment_schedule(self, info: Info, input: ScheduleInput) -> ScheduleResult:
        actor = info.context.require_actor()
        tz = info.context.settings.tz
        async with info.context.transaction() as session:
            schedule = await schedules.create_schedule(
                session,
                item_code=input.item_code,
                start_time=input.start_time,
                end_time=input.end_time,
                valid_from=input.valid_from,
                valid_to=input.valid_to,
                actor=actor,
                therapist_id=parse_id(input.therapist_id, "therapistId")
                if input.therapist_id
                else None,
                room=input.room,
                weekdays=input.weekdays,
                slot_minutes=input.slot_minutes,
                capacity=input.capacity,
                working_days_only=input.working_days_only,
            )
            created = await schedules.generate_slots(
                session,
                start=max(input.valid_from, local_day(now_or(None), tz)),
                tz=tz,
                schedule_ids=[schedule.id],
            )  # type: ignore[list-item]
        return ScheduleResult(schedule_id=strawberry.ID(str(schedule.id)), slots_created=created)

    @strawberry.mutation(
        permission_classes=[Managers],
        description="停诊/请假 / a day off for a schedule or a therapist",
    )
    async def add_schedule_exception(
        self,
        info: Info,
        day: date,
        reason: str,
        schedule_id: strawberry.ID | None = None,
        therapist_id: strawberry.ID | None = None,
    ) -> bool:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            await schedules.add_exception(
                session,
                day=day,
                actor=actor,
                reason=reason,
                tz=info.context.settings.tz,
                schedule_id=parse_id(schedule_id, "scheduleId") if schedule_id else None,
                therapist_id=parse_id(therapist_id, "therapistId") if therapist_id else None,
            )
        return True

    @strawberry.mutation(
        permission_classes=[Managers],
        description="发布新版知情同意书 / publish a new consent text version",
    )
    async def publish_consent_text(
        self, info: Info, item_code: str, title: str, body: str
    ) -> ConsentText:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            item = await item_by_code(session, item_code)
            row = await records.publish_consent_text(
                session, item, title=title, body=body, actor=actor
            )
        return ConsentText.from_row(row)

    @strawberry.mutation(
        permission_classes=[HasRole(Role.ADMIN)],
        description="标记爽约（通常由后台任务执行）/ mark no-shows now",
    )
    async def mark_no_shows(self, info: Info) -> list[Appointment]:
        info.context.require_actor()
        async with info.context.transaction() as session:
            rows = await appointments.mark_no_shows(session)
        return [Appointment.from_row(r) for r in rows]
