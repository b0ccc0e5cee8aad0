"""Treatment management (综合治疗管理): items, orders and courses, schedules and slots,
appointments, the queue, bedside records, consent, attachments and follow-ups.

Rows edited on a PAD (appointment, queue entry, treatment record, assessment, consent)
carry a server-assigned `version` (bumped on every update), `updated_at` and a soft
delete (`deleted_at`): offline sync detects conflicts and pulls changes through them.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from api.models.base import json_field, ts_field


class PaymentStatus(StrEnum):
    PAID = "paid"
    UNPAID = "unpaid"
    REFUNDED = "refunded"


class AppointmentStatus(StrEnum):
    """FHIR R4 AppointmentStatus, so exports map one to one."""

    PROPOSED = "proposed"
    BOOKED = "booked"
    ARRIVED = "arrived"  # checked in at the desk, waiting in the queue
    CHECKED_IN = "checked-in"  # called: the encounter may begin
    FULFILLED = "fulfilled"  # session archived
    CANCELLED = "cancelled"
    NOSHOW = "noshow"
    WAITLIST = "waitlist"


# Appointments that hold a seat and a session of the order.
ACTIVE_STATUSES = (
    AppointmentStatus.BOOKED,
    AppointmentStatus.ARRIVED,
    AppointmentStatus.CHECKED_IN,
)


class BookingChannel(StrEnum):
    PAD = "pad"
    ADMIN = "admin"
    OFFICIAL_ACCOUNT = "official_account"
    WALK_IN = "walk_in"
    HIS = "his"


class TreatmentItem(SQLModel, table=True):
    """A treatment the hospital offers (针灸, 理疗, 激光, 换药) and its templates."""

    __tablename__ = "treatment_item"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True, max_length=40)
    name: str = Field(max_length=100)
    name_en: str = Field(default="", max_length=100)
    department_id: int | None = Field(default=None, foreign_key="department.id", index=True)
    duration_minutes: int = Field(default=30)
    price_cents: int = Field(default=0)  # per session, for revenue statistics
    notes: str = Field(default="", max_length=2000)  # 注意事项, printed on the receipt
    # 怎么走: where the item is given, "中文 / English", printed on the receipt.
    location: str = Field(default="", max_length=300)
    requires_consent: bool = Field(default=True)
    # {"trigger": "course" | "session", "offset_days": [7, 30], "questionnaire": [field…]}
    followup_rule: dict[str, Any] = json_field()
    record_template: list[dict[str, Any]] = json_field(default_factory=list)
    assessment_template: list[dict[str, Any]] = json_field(default_factory=list)
    is_active: bool = Field(default=True)


class ConsentText(SQLModel, table=True):
    """One version of an item's consent form (知情同意书); a signature binds to its sha256."""

    __tablename__ = "consent_text"
    __table_args__ = (
        sa.UniqueConstraint("item_id", "version", name="uq_consent_text_item_version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="treatment_item.id", index=True)
    version: int
    title: str = Field(max_length=200)
    body: str
    sha256: str = Field(max_length=64)
    is_current: bool = Field(default=True)
    created_at: datetime = ts_field(default_now=True)


class TreatmentCourse(SQLModel, table=True):
    """Orders of one patient and item merged into one course (疗程)."""

    __tablename__ = "treatment_course"

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    item_id: int = Field(foreign_key="treatment_item.id")
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = ts_field(default_now=True)
    completed_at: datetime | None = ts_field(nullable=True)


class TreatmentOrder(SQLModel, table=True):
    """A treatment order (医嘱/处方) from the HIS or entered by staff."""

    __tablename__ = "treatment_order"
    __table_args__ = (
        sa.CheckConstraint(
            "used_sessions >= 0 AND used_sessions <= sessions", name="used_within_sessions"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    his_order_no: str | None = Field(default=None, unique=True, max_length=64)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    item_id: int = Field(foreign_key="treatment_item.id", index=True)
    course_id: int | None = Field(default=None, foreign_key="treatment_course.id", index=True)
    sessions: int
    used_sessions: int = Field(default=0)
    payment_status: str = Field(default=PaymentStatus.UNPAID, max_length=20)
    ordering_doctor_id: int | None = Field(default=None, foreign_key="user.id")
    ordering_doctor_name: str | None = Field(default=None, max_length=100)
    source: str = Field(default="admin", max_length=20)  # admin | his
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = ts_field(default_now=True)
    updated_at: datetime = ts_field(default_now=True)
    cancelled_at: datetime | None = ts_field(nullable=True)


class Schedule(SQLModel, table=True):
    """A working pattern (排班) for an item with a therapist and/or room."""

    __tablename__ = "treatment_schedule"

    id: int | None = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="treatment_item.id", index=True)
    therapist_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    room: str = Field(default="", max_length=60)
    weekdays: list[int] = json_field(default_factory=lambda: [0, 1, 2, 3, 4])  # Monday = 0
    start_time: str = Field(max_length=5)  # "08:00" local time
    end_time: str = Field(max_length=5)  # "12:00"
    slot_minutes: int = Field(default=30)
    capacity: int = Field(default=1)
    working_days_only: bool = Field(default=True)  # skip Chinese public holidays
    valid_from: date
    valid_to: date | None = None
    is_active: bool = Field(default=True)


class ScheduleException(SQLModel, table=True):
    """A day without slots: a therapist away, a room closed, a local holiday."""

    __tablename__ = "schedule_exception"

    id: int | None = Field(default=None, primary_key=True)
    schedule_id: int | None = Field(default=None, foreign_key="treatment_schedule.id", index=True)
    therapist_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    day: date = Field(index=True)
    reason: str = Field(default="", max_length=200)


class Slot(SQLModel, table=True):
    """A bookable time with capacity; `remaining` only moves through conditional UPDATEs."""

    __tablename__ = "treatment_slot"
    __table_args__ = (
        sa.UniqueConstraint("schedule_id", "starts_at", name="uq_treatment_slot_schedule_start"),
        sa.CheckConstraint(
            "remaining >= 0 AND remaining <= capacity", name="remaining_within_capacity"
        ),
        sa.Index("ix_treatment_slot_item_start", "item_id", "starts_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    schedule_id: int = Field(foreign_key="treatment_schedule.id")
    item_id: int = Field(foreign_key="treatment_item.id")
    therapist_id: int | None = Field(default=None, foreign_key="user.id")
    room: str = Field(default="", max_length=60)
    starts_at: datetime = ts_field()
    ends_at: datetime = ts_field()
    capacity: int
    remaining: int
    cancelled_at: datetime | None = ts_field(nullable=True)


class AppointmentSeries(SQLModel, table=True):
    """A recurring booking (every weekday at 9:00 for N sessions) made in one step."""

    __tablename__ = "appointment_series"

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="treatment_order.id", index=True)
    rule: dict[str, Any] = json_field()
    requested: int
    placed: int
    unplaced: list[dict[str, Any]] = json_field(default_factory=list)
    created_by_id: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = ts_field(default_now=True)


class Appointment(SQLModel, table=True):
    __tablename__ = "appointment"
    __table_args__ = (
        # myWorklist: one therapist, one day.
        sa.Index("ix_appointment_therapist_start", "therapist_id", "starts_at"),
        sa.Index("ix_appointment_status_start", "status", "starts_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    order_id: int | None = Field(default=None, foreign_key="treatment_order.id", index=True)
    item_id: int = Field(foreign_key="treatment_item.id")
    slot_id: int | None = Field(default=None, foreign_key="treatment_slot.id", index=True)
    series_id: int | None = Field(default=None, foreign_key="appointment_series.id")
    therapist_id: int | None = Field(default=None, foreign_key="user.id")
    room: str = Field(default="", max_length=60)
    starts_at: datetime = ts_field()
    ends_at: datetime = ts_field()
    status: str = Field(default=AppointmentStatus.BOOKED, max_length=20)
    channel: str = Field(default=BookingChannel.ADMIN, max_length=20)
    walk_in: bool = Field(default=False)
    receipt_no: str = Field(default="", max_length=40)
    receipt: dict[str, Any] = json_field()  # 回执: what was printed / pushed, with the notes
    booked_by_id: int | None = Field(default=None, foreign_key="user.id")
    cancel_reason: str | None = Field(default=None, max_length=200)
    rescheduled_from_id: int | None = Field(default=None, foreign_key="appointment.id")
    version: int = Field(default=1)
    created_at: datetime = ts_field(default_now=True)
    updated_at: datetime = ts_field(default_now=True)
    deleted_at: datetime | None = ts_field(nullable=True)


class QueueEntry(SQLModel, table=True):
    """A place in the day's queue (治疗队列) of a room or a therapist."""

    __tablename__ = "queue_entry"
    __table_args__ = (
        sa.UniqueConstraint(
            "queue_day", "queue_key", "number", name="uq_queue_entry_day_key_number"
        ),
        sa.Index("ix_queue_entry_day_key_position", "queue_day", "queue_key", "position"),
    )

    id: int | None = Field(default=None, primary_key=True)
    appointment_id: int = Field(foreign_key="appointment.id", unique=True)
    patient_id: int = Field(foreign_key="patient.id")
    queue_day: date
    queue_key: str = Field(max_length=80)  # "room:理疗室1" or "therapist:7"
    number: int  # the ticket number shown to the patient
    position: int  # order of calling; a skip moves the entry to the end
    status: str = Field(default="waiting", max_length=20)  # waiting | called | done | left
    skips: int = Field(default=0)
    called_at: datetime | None = ts_field(nullable=True)
    version: int = Field(default=1)
    created_at: datetime = ts_field(default_now=True)
    updated_at: datetime = ts_field(default_now=True)
    deleted_at: datetime | None = ts_field(nullable=True)


class TreatmentRecord(SQLModel, table=True):
    """One executed session at the bedside: payment re-confirmed, data, then archived."""

    __tablename__ = "treatment_record"
    __table_args__ = (sa.Index("ix_treatment_record_archived", "archived_at"),)

    id: int | None = Field(default=None, primary_key=True)
    appointment_id: int = Field(foreign_key="appointment.id", unique=True)
    order_id: int = Field(foreign_key="treatment_order.id", index=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    item_id: int = Field(foreign_key="treatment_item.id")
    therapist_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    department_id: int | None = Field(default=None, foreign_key="department.id")
    status: str = Field(default="draft", max_length=20)  # draft | archived
    payment_confirmed_at: datetime = ts_field()
    data: dict[str, Any] = json_field()
    price_cents: int = Field(default=0)  # the item's price when executed
    archived_at: datetime | None = ts_field(nullable=True)
    version: int = Field(default=1)
    created_at: datetime = ts_field(default_now=True)
    updated_at: datetime = ts_field(default_now=True)
    deleted_at: datetime | None = ts_field(nullable=True)


class AssessmentRecord(SQLModel, table=True):
    __tablename__ = "assessment_record"

    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="treatment_record.id", unique=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    data: dict[str, Any] = json_field()
    assessed_by_id: int | None = Field(default=None, foreign_key="user.id")
    version: int = Field(default=1)
    created_at: datetime = ts_field(default_now=True)
    updated_at: datetime = ts_field(default_now=True)
    deleted_at: datetime | None = ts_field(nullable=True)


class ConsentSignature(SQLModel, table=True):
    """The patient's signature image bound to the exact consent text they saw."""

    __tablename__ = "consent_signature"

    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="treatment_record.id", index=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    consent_text_id: int = Field(foreign_key="consent_text.id")
    text_sha256: str = Field(max_length=64)
    signature_attachment_id: int = Field(foreign_key="attachment.id")
    signature_sha256: str = Field(max_length=64)
    binding_sha256: str = Field(max_length=64)  # sha256(text_sha256 + signature_sha256)
    signer_name: str = Field(default="", max_length=100)  # patient or guardian
    signed_at: datetime = ts_field()
    version: int = Field(default=1)
    created_at: datetime = ts_field(default_now=True)
    updated_at: datetime = ts_field(default_now=True)
    deleted_at: datetime | None = ts_field(nullable=True)


class Attachment(SQLModel, table=True):
    """A stored blob (photo, signature); the bytes live in `api.storage`."""

    __tablename__ = "attachment"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=200)
    sha256: str = Field(max_length=64)
    content_type: str = Field(max_length=60)
    size: int
    uploaded_by_id: int | None = Field(default=None, foreign_key="user.id")
    record_id: int | None = Field(default=None, foreign_key="treatment_record.id", index=True)
    purpose: str | None = Field(default=None, max_length=20)  # before | after | signature
    created_at: datetime = ts_field(default_now=True)
    deleted_at: datetime | None = ts_field(nullable=True)


class FollowUp(SQLModel, table=True):
    """A follow-up task (随访) with its questionnaire; the patient answers later."""

    __tablename__ = "follow_up"
    __table_args__ = (sa.UniqueConstraint("source_key", name="uq_follow_up_source_key"),)

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    item_id: int = Field(foreign_key="treatment_item.id")
    order_id: int | None = Field(default=None, foreign_key="treatment_order.id")
    course_id: int | None = Field(default=None, foreign_key="treatment_course.id")
    record_id: int | None = Field(default=None, foreign_key="treatment_record.id")
    source_key: str = Field(max_length=120)  # what created it, so it is created once
    due_at: datetime = ts_field(index=True)
    questionnaire: list[dict[str, Any]] = json_field(default_factory=list)
    status: str = Field(default="open", max_length=20)  # open | answered | cancelled
    answers: dict[str, Any] = json_field()
    answered_at: datetime | None = ts_field(nullable=True)
    created_at: datetime = ts_field(default_now=True)
