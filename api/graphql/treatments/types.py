"""GraphQL types of treatment management. Patients appear with masked identifiers."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON

from api.domain.treatments.orders import remaining_sessions
from api.graphql.context import Info
from api.graphql.patients.types import Patient
from api.graphql.people.loaders import load_user
from api.graphql.people.types import UserRef
from api.graphql.treatments.loaders import load_item, load_order, load_patient_row
from api.models import treatments as m


def _id(value: int | None) -> strawberry.ID:
    return strawberry.ID(str(value))


@strawberry.enum(description="缴费状态 / payment status")
class PaymentStatus(Enum):
    PAID = "paid"
    UNPAID = "unpaid"
    REFUNDED = "refunded"


@strawberry.enum(description="预约渠道 / booking channel")
class BookingChannel(Enum):
    PAD = "pad"
    ADMIN = "admin"
    OFFICIAL_ACCOUNT = "official_account"


@strawberry.type(description="知情同意书的一个版本 / one version of a consent text")
class ConsentText:
    id: strawberry.ID
    version: int
    title: str
    body: str
    sha256: str

    @classmethod
    def from_row(cls, row: m.ConsentText) -> ConsentText:
        return cls(id=_id(row.id), version=row.version, title=row.title, body=row.body, sha256=row.sha256)


@strawberry.type(description="治疗项目 / treatment item")
class TreatmentItem:
    row: strawberry.Private[m.TreatmentItem]
    id: strawberry.ID
    code: str
    name: str
    name_en: str
    duration_minutes: int
    price_cents: int
    notes: str = strawberry.field(description="注意事项 / what the patient should know")
    requires_consent: bool
    followup_rule: JSON
    record_template: JSON
    assessment_template: JSON

    @classmethod
    def from_row(cls, row: m.TreatmentItem) -> TreatmentItem:
        return cls(
            row=row, id=_id(row.id), code=row.code, name=row.name, name_en=row.name_en,
            duration_minutes=row.duration_minutes, price_cents=row.price_cents, notes=row.notes,
            requires_consent=row.requires_consent, followup_rule=row.followup_rule or {},
            record_template=row.record_template or [], assessment_template=row.assessment_template or [],
        )

    @strawberry.field(description="当前可签署的同意书 / the consent text to sign now")
    async def current_consent(self, info: Info) -> ConsentText | None:
        from api.domain.treatments.records import current_consent_text

        async with info.context.read() as session:
            row = await current_consent_text(session, self.row.id)  # type: ignore[arg-type]
        return ConsentText.from_row(row) if row else None


async def _patient(info: Info, patient_id: int) -> Patient:
    return Patient.from_row(await load_patient_row(info.context, patient_id), info.context.services.cipher)


async def _user(info: Info, user_id: int | None) -> UserRef | None:
    user = await load_user(info.context, user_id)
    return UserRef.from_row(user) if user else None


@strawberry.type(description="治疗医嘱 / treatment order")
class TreatmentOrder:
    row: strawberry.Private[m.TreatmentOrder]
    id: strawberry.ID
    sessions: int
    used_sessions: int
    remaining_sessions: int
    payment_status: PaymentStatus
    course_id: strawberry.ID | None
    his_order_no: str | None
    source: str
    created_at: datetime
    cancelled_at: datetime | None

    @classmethod
    def from_row(cls, row: m.TreatmentOrder) -> TreatmentOrder:
        return cls(
            row=row, id=_id(row.id), sessions=row.sessions, used_sessions=row.used_sessions,
            remaining_sessions=remaining_sessions(row), payment_status=PaymentStatus(row.payment_status),
            course_id=_id(row.course_id) if row.course_id else None, his_order_no=row.his_order_no,
            source=row.source, created_at=row.created_at, cancelled_at=row.cancelled_at,
        )

    @strawberry.field
    async def item(self, info: Info) -> TreatmentItem:
        return TreatmentItem.from_row(await load_item(info.context, self.row.item_id))

    @strawberry.field
    async def patient(self, info: Info) -> Patient:
        return await _patient(info, self.row.patient_id)


@strawberry.type(description="可预约时段 / bookable slot")
class Slot:
    row: strawberry.Private[m.Slot]
    id: strawberry.ID
    starts_at: datetime
    ends_at: datetime
    capacity: int
    remaining: int
    room: str

    @classmethod
    def from_row(cls, row: m.Slot) -> Slot:
        return cls(row=row, id=_id(row.id), starts_at=row.starts_at, ends_at=row.ends_at, capacity=row.capacity, remaining=row.remaining, room=row.room)

    @strawberry.field
    async def therapist(self, info: Info) -> UserRef | None:
        return await _user(info, self.row.therapist_id)

    @strawberry.field
    async def item(self, info: Info) -> TreatmentItem:
        return TreatmentItem.from_row(await load_item(info.context, self.row.item_id))


@strawberry.type(description="预约；status 为 FHIR R4 AppointmentStatus 代码 / appointment, FHIR status codes")
class Appointment:
    row: strawberry.Private[m.Appointment]
    id: strawberry.ID
    status: str = strawberry.field(description="proposed | booked | arrived | checked-in | fulfilled | cancelled | noshow | waitlist")
    starts_at: datetime
    ends_at: datetime
    room: str
    channel: str
    walk_in: bool
    receipt_no: str
    receipt: JSON = strawberry.field(description="回执: no, text, notes (注意事项)")
    cancel_reason: str | None
    version: int
    updated_at: datetime

    @classmethod
    def from_row(cls, row: m.Appointment) -> Appointment:
        return cls(
            row=row, id=_id(row.id), status=row.status, starts_at=row.starts_at, ends_at=row.ends_at, room=row.room,
            channel=row.channel, walk_in=row.walk_in, receipt_no=row.receipt_no, receipt=row.receipt or {},
            cancel_reason=row.cancel_reason, version=row.version, updated_at=row.updated_at,
        )

    @strawberry.field(description="当日队列 / the queue this appointment joins at check-in (dayQueue's queueKey)")
    def queue_key(self) -> str:
        from api.domain.treatments.queue import queue_key_for

        return queue_key_for(self.row)

    @strawberry.field
    async def item(self, info: Info) -> TreatmentItem:
        return TreatmentItem.from_row(await load_item(info.context, self.row.item_id))

    @strawberry.field
    async def patient(self, info: Info) -> Patient:
        return await _patient(info, self.row.patient_id)

    @strawberry.field
    async def order(self, info: Info) -> TreatmentOrder | None:
        if self.row.order_id is None:
            return None
        row = await load_order(info.context, self.row.order_id)
        return TreatmentOrder.from_row(row) if row else None

    @strawberry.field
    async def therapist(self, info: Info) -> UserRef | None:
        return await _user(info, self.row.therapist_id)


@strawberry.type(description="未能安排的一次 / a session that could not be placed")
class UnplacedSession:
    date: date | None
    reason: str


@strawberry.type(description="批量预约结果 / result of a recurring series booking")
class SeriesBooking:
    series_id: strawberry.ID
    requested: int
    appointments: list[Appointment]
    unplaced: list[UnplacedSession]


@strawberry.type(description="排队号 / a place in the day's queue")
class QueueEntry:
    row: strawberry.Private[m.QueueEntry]
    id: strawberry.ID
    queue_key: str
    queue_day: date
    number: int
    position: int
    status: str = strawberry.field(description="waiting | called | done")
    skips: int
    called_at: datetime | None
    version: int
    updated_at: datetime

    @classmethod
    def from_row(cls, row: m.QueueEntry) -> QueueEntry:
        return cls(
            row=row, id=_id(row.id), queue_key=row.queue_key, queue_day=row.queue_day, number=row.number, position=row.position,
            status=row.status, skips=row.skips, called_at=row.called_at, version=row.version, updated_at=row.updated_at,
        )

    @strawberry.field
    async def patient(self, info: Info) -> Patient:
        return await _patient(info, self.row.patient_id)

    @strawberry.field
    async def appointment(self, info: Info) -> Appointment:
        async with info.context.read() as session:
            row = await session.get(m.Appointment, self.row.appointment_id)
        assert row is not None
        return Appointment.from_row(row)


@strawberry.type(description="附件 / attachment (photo or signature)")
class Attachment:
    id: strawberry.ID
    key: str
    sha256: str
    content_type: str
    size: int
    purpose: str | None

    @classmethod
    def from_row(cls, row: m.Attachment) -> Attachment:
        return cls(id=_id(row.id), key=row.key, sha256=row.sha256, content_type=row.content_type, size=row.size, purpose=row.purpose)


@strawberry.type(description="知情同意书签名 / consent signature")
class ConsentSignature:
    id: strawberry.ID
    consent_text_id: strawberry.ID
    text_sha256: str
    signature_sha256: str
    binding_sha256: str
    signer_name: str
    signed_at: datetime
    version: int

    @classmethod
    def from_row(cls, row: m.ConsentSignature) -> ConsentSignature:
        return cls(
            id=_id(row.id), consent_text_id=_id(row.consent_text_id), text_sha256=row.text_sha256, signature_sha256=row.signature_sha256,
            binding_sha256=row.binding_sha256, signer_name=row.signer_name, signed_at=row.signed_at, version=row.version,
        )


@strawberry.type(description="评估记录 / assessment record")
class AssessmentRecord:
    id: strawberry.ID
    data: JSON
    version: int
    updated_at: datetime

    @classmethod
    def from_row(cls, row: m.AssessmentRecord) -> AssessmentRecord:
        return cls(id=_id(row.id), data=row.data, version=row.version, updated_at=row.updated_at)


@strawberry.type(description="治疗记录 / treatment record of one session")
class TreatmentRecord:
    row: strawberry.Private[m.TreatmentRecord]
    id: strawberry.ID
    status: str = strawberry.field(description="draft | archived")
    data: JSON
    payment_confirmed_at: datetime
    archived_at: datetime | None
    version: int
    updated_at: datetime

    @classmethod
    def from_row(cls, row: m.TreatmentRecord) -> TreatmentRecord:
        return cls(
            row=row, id=_id(row.id), status=row.status, data=row.data, payment_confirmed_at=row.payment_confirmed_at,
            archived_at=row.archived_at, version=row.version, updated_at=row.updated_at,
        )

    @strawberry.field
    async def item(self, info: Info) -> TreatmentItem:
        return TreatmentItem.from_row(await load_item(info.context, self.row.item_id))

    @strawberry.field
    async def assessment(self, info: Info) -> AssessmentRecord | None:
        import sqlalchemy as sa

        async with info.context.read() as session:
            row = (await session.execute(sa.select(m.AssessmentRecord).where(m.AssessmentRecord.record_id == self.row.id))).scalar_one_or_none()
        return AssessmentRecord.from_row(row) if row else None

    @strawberry.field
    async def attachments(self, info: Info) -> list[Attachment]:
        from api.domain.treatments.records import record_photos

        async with info.context.read() as session:
            rows = await record_photos(session, self.row.id)  # type: ignore[arg-type]
        return [Attachment.from_row(r) for r in rows]

    @strawberry.field
    async def consent(self, info: Info) -> ConsentSignature | None:
        from api.domain.treatments.records import active_signature

        async with info.context.read() as session:
            row = await active_signature(session, self.row.id)  # type: ignore[arg-type]
        return ConsentSignature.from_row(row) if row else None


@strawberry.type(description="随访 / follow-up")
class FollowUp:
    row: strawberry.Private[m.FollowUp]
    id: strawberry.ID
    due_at: datetime
    status: str = strawberry.field(description="open | answered | cancelled")
    questionnaire: JSON
    answers: JSON
    answered_at: datetime | None

    @classmethod
    def from_row(cls, row: m.FollowUp) -> FollowUp:
        return cls(row=row, id=_id(row.id), due_at=row.due_at, status=row.status, questionnaire=row.questionnaire, answers=row.answers, answered_at=row.answered_at)

    @strawberry.field
    async def item(self, info: Info) -> TreatmentItem:
        return TreatmentItem.from_row(await load_item(info.context, self.row.item_id))
