"""Shared helpers of the treatment tests: demo lookups, a slot starting soon, images."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from PIL import Image

from api.auth import SYSTEM_ACTOR
from api.domain.treatments.orders import create_order
from api.models.patients import Patient
from api.models.people import User
from api.models.treatments import Schedule, Slot, TreatmentItem, TreatmentOrder
from api.services import Services


def png_bytes(color: str = "red", size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


async def ids(services: Services) -> dict[str, int]:
    """Primary keys of the demo rows the tests talk about."""
    async with services.db.session() as session:
        users = {u.username: u.id for u in (await session.execute(sa.select(User))).scalars()}
        patients = {p.mrn: p.id for p in (await session.execute(sa.select(Patient))).scalars()}
        items = {i.code: i.id for i in (await session.execute(sa.select(TreatmentItem))).scalars()}
        zhou_order = (
            await session.execute(
                sa.select(TreatmentOrder.id).where(
                    TreatmentOrder.his_order_no == "DEMO-P0001-PHYSIO"
                )
            )
        ).scalar_one()
    return {
        **{f"user:{k}": v for k, v in users.items()},
        **{f"patient:{k}": v for k, v in patients.items()},
        **{f"item:{k}": v for k, v in items.items()},
        "order:zhou": zhou_order,
    }  # type: ignore[dict-item]


async def make_slot(
    services: Services,
    *,
    item_code: str = "PHYSIO",
    starts_in: timedelta = timedelta(minutes=5),
    capacity: int = 1,
    therapist: str | None = "pt.sun",
    room: str = "理疗室2 Physio 2",
    starts_at: datetime | None = None,
) -> int:
    """A slot at a chosen time (the demo's slots are on the schedule's fixed hours)."""
    begins = starts_at or (datetime.now(UTC) + starts_in).replace(microsecond=0)
    async with services.db.transaction() as session:
        item = (
            await session.execute(sa.select(TreatmentItem).where(TreatmentItem.code == item_code))
        ).scalar_one()
        therapist_id = (
            (
                await session.execute(sa.select(User.id).where(User.username == therapist))
            ).scalar_one()
            if therapist
            else None
        )
        schedule = Schedule(
            item_id=item.id,
            therapist_id=therapist_id,
            room=room,
            start_time="00:00",
            end_time="23:59",
            valid_from=begins.date(),
            is_active=False,
        )  # type: ignore[arg-type]
        session.add(schedule)
        await session.flush()
        slot = Slot(
            schedule_id=schedule.id,
            item_id=item.id,
            therapist_id=therapist_id,
            room=room,
            starts_at=begins,  # type: ignore[arg-type]
            ends_at=begins + timedelta(minutes=30),
            capacity=capacity,
            remaining=capacity,
        )
        session.add(slot)
        await session.flush()
        assert slot.id is not None
        return slot.id


async def make_order(
    services: Services, mrn: str, item_code: str = "PHYSIO", *, sessions: int = 3, paid: bool = True
) -> int:
    async with services.db.transaction() as session:
        patient_id = (
            await session.execute(sa.select(Patient.id).where(Patient.mrn == mrn))
        ).scalar_one()
        order = await create_order(
            session,
            patient_id=patient_id,
            item_code=item_code,
            sessions=sessions,
            payment_status="paid" if paid else "unpaid",
            actor=SYSTEM_ACTOR,
        )
        assert order.id is not None
        return order.id


async def count(services: Services, model: type, *where: object) -> int:
    async with services.db.session() as session:
        return int(
            (
                await session.execute(sa.select(sa.func.count()).select_from(model).where(*where))
            ).scalar_one()
        )  # type: ignore[arg-type]


def local_today() -> date:
    """Today in the hospital's zone (the demo and the queue count Asia/Shanghai days)."""
    return datetime.now(ZoneInfo("Asia/Shanghai")).date()


SAMPLE_DATA = {
    "PHYSIO": ({"modality": "中频 IF", "minutes": 20, "reaction": "无 none"}, {"pain_score": 3}),
    "ACUP": ({"points": "足三里", "needles": 6, "reaction": "无 none"}, {"pain_score": 4}),
    "LASER": (
        {"wavelength_nm": 1064, "energy_j": 12.5, "area": "面部", "reaction": "无 none"},
        {"skin": "正常 normal"},
    ),
    "DRESS": ({"wound": "愈合良好 healing"}, {}),
}


async def execute_session(
    services: Services, *, therapist: str, order_id: int, at: datetime
) -> int:
    """A walk-in treated and archived at `at`, through the same domain actions the PAD uses."""
    import hashlib

    from api.auth import Actor
    from api.domain.treatments import appointments, records
    from api.models.treatments import Attachment

    async with services.db.transaction() as session:
        user = (
            await session.execute(sa.select(User).where(User.username == therapist))
        ).scalar_one()
        actor = Actor.from_user(user)
        order = (
            await session.execute(sa.select(TreatmentOrder).where(TreatmentOrder.id == order_id))
        ).scalar_one()
        item = (
            await session.execute(sa.select(TreatmentItem).where(TreatmentItem.id == order.item_id))
        ).scalar_one()
        appointment = await appointments.register_walk_in(session, order, actor=actor, now=at)
        record = await records.start_treatment(session, appointment, actor=actor, now=at)
        if item.requires_consent:
            key = f"test/sig-{record.id}.png"
            session.add(
                Attachment(
                    key=key,
                    sha256=hashlib.sha256(key.encode()).hexdigest(),
                    content_type="image/png",
                    size=1,
                )
            )
            await session.flush()
            text = await records.current_consent_text(session, item.id)  # type: ignore[arg-type]
            assert text is not None
            await records.sign_consent(
                session,
                record,
                consent_text_id=text.id,
                text_sha256=text.sha256,
                signature_key=key,
                actor=actor,
                now=at,
            )  # type: ignore[arg-type]
        data, assessment = SAMPLE_DATA[item.code]
        await records.save_treatment_record(session, record, data, actor=actor, now=at)
        if item.assessment_template:
            await records.save_assessment(session, record, assessment, actor=actor, now=at)
        await records.archive_session(session, record, actor=actor, now=at)
        assert record.id is not None
        return record.id
