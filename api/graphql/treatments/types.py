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
from api.graphql.rows import from_row
from api.graphql.treatments.loaders import load_item, load_order, load_patient_row
from api.models import treatments as m


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
        return from_row(cls, row)


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
    location: str = strawberry.field(
        description="怎么走: where it is given, 中文 / English / how to get there"
    )
    requires_consent: bool
    followup_rule: JSON
    record_template: JSON
    assessment_template: JSON

    @classmethod
    def from_row(cls, row: m.TreatmentItem) -> TreatmentItem:
        return from_row(
            cls,
            row,
            followup_rule=row.followup_rule or {},
            record_template=row.record_template or [],
            assessment_template=row.assessment_template or [],
        )

    @strawberry.field(description="当前可签署的同意书 / the consent text to sign now")
    async def current_consent(self, info: Info) -> ConsentText | None:
        from api.domain.treatments.records import current_consent_text

        async with info.context.read() as session:
            row = await current_consent_text(session, self.row.id)  # type: ignore[arg-type]
        return ConsentText.from_row(row) if row else None


async def _patient(info: Info, patient_id: int) -> Patient:
    return Patient.from_row(
        await load_patient_row(info.context, patient_id), info.context.services.cipher
    )


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
        return from_row(
            cls,
            row,
            remaining_sessions=remaining_sessions(row),
            payment_status=PaymentStatus(row.payment_status),
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
        return from_row(cls, row)

    @strawberry.field
    async def therapist(self, info: Info) -> UserRef | None:
        return await _user(info, self.row.therapist_id)

    @strawberry.field
    async def item(self, info: Info) -> TreatmentItem:
        return TreatmentItem.from_row(await load_item(info.context, self.row.item_id))


@strawberry.type(
    description="预约；status 为 FHIR R4 AppointmentStatus 代码 / appointment, FHIR status codes"
)
class Appointment:
    row: strawberry.Private[m.Appointment]
    id: strawberry.ID
    status: str = strawberry.field(
        description="proposed | booked | arrived | checked-in | fulfilled | cancelled | noshow | waitlist"
    )
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
        return from_row(cls, row, receipt=row.receipt or {})

    @strawberry.field(
        description="当日队列 / the queue this appointment joins at check-in (dayQueue's queueKey)"
    )
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


@strawberry.type(description="预约回执单 PDF / the booking receipt as a PDF")
class AppointmentReceipt:
    filename: str
    content_type: str
    size_bytes: int
    content_base64: str


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
        return from_row(cls, row)

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
        return from_row(cls, row)


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
        return from_row(cls, row)


@strawberry.type(description="评估记录 / assessment record")
class AssessmentRecord:
    id: strawberry.ID
    data: JSON
    version: int
    updated_at: datetime

    @classmethod
    def from_row(cls, row: m.AssessmentRecord) -> AssessmentRecord:
        return from_row(cls, row)


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
        return from_row(cls, row)

    @strawberry.field
    async def item(self, info: Info) -> TreatmentItem:
        return TreatmentItem.from_row(await load_item(info.context, self.row.item_id))

    @strawberry.field
    async def assessment(self, info: Info) -> AssessmentRecord | None:
        import sqlalchemy as sa

        async with info.context.read() as session:
            row = (
                await session.execute(
                    sa.select(m.AssessmentRecord).where(m.AssessmentRecord.record_id == self.row.id)
                )
            ).scalar_one_or_none()
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
        return from_row(cls, row)

    @strawberry.field
    async def item(self, info: Info) -> TreatmentItem:
        return TreatmentItem.from_row(await load_item(info.context, self.row.item_id))
