"""Slots follow the mainland China working calendar: holidays off, make-up days on."""

from __future__ import annotations

from collections import Counter
from datetime import date

import sqlalchemy as sa

from api.auth import SYSTEM_ACTOR
from api.domain.treatments.schedules import add_exception, create_schedule, generate_slots
from api.models.treatments import Slot
from api.services import Services


async def test_national_day_week_has_no_slots_and_the_make_up_saturday_has(demo: Services) -> None:
    tz = demo.settings.tz
    async with demo.db.transaction() as session:
        schedule = await create_schedule(
            session,
            item_code="ACUP",
            start_time="09:00",
            end_time="11:00",
            slot_minutes=60,
            capacity=2,
            valid_from=date(2026, 9, 1),
            actor=SYSTEM_ACTOR,
            room="针灸室2",
        )
        await add_exception(
            session,
            day=date(2026, 9, 29),
            schedule_id=schedule.id,
            reason="学术会议 conference",
            actor=SYSTEM_ACTOR,
        )
        created = await generate_slots(
            session, start=date(2026, 9, 28), days=14, tz=tz, schedule_ids=[schedule.id]
        )  # type: ignore[list-item]
        again = await generate_slots(
            session, start=date(2026, 9, 28), days=14, tz=tz, schedule_ids=[schedule.id]
        )  # type: ignore[list-item]
    async with demo.db.session() as session:
        starts = (
            (
                await session.execute(
                    sa.select(Slot.starts_at).where(Slot.schedule_id == schedule.id)
                )
            )
            .scalars()
            .all()
        )
    per_day = Counter(s.astimezone(tz).date() for s in starts)
    assert per_day == {
        date(2026, 9, 28): 2,  # Monday
        date(2026, 9, 30): 2,  # (29th: the schedule's day off)
        date(2026, 10, 8): 2,  # back to work after 1-7 October
        date(2026, 10, 9): 2,
        date(2026, 10, 10): 2,  # make-up Saturday (调休)
    }
    assert created == 10 and again == 0
    assert {s.astimezone(tz).hour for s in starts} == {9, 10}
