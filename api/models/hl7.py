"""The HL7 interface's own tables: the outbound queue and what we told the HIS.

No foreign keys to the treatment tables, so the HL7 migration depends only on the
foundation; rows refer to appointments by id.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from api.models.base import ts_field


class HL7Outbound(SQLModel, table=True):
    """One message for the HIS, kept until the HIS answers AA (the outbox of the interface).

    status: pending (to send, again after `next_attempt_at`), sent (AA received),
    failed (the HIS refused it with AR, or it ran out of attempts: an operator looks).
    """

    __tablename__ = "hl7_outbound"
    __table_args__ = (sa.Index("ix_hl7_outbound_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    control_id: str = Field(unique=True, max_length=20)  # MSH-10 of the message
    message_type: str = Field(max_length=20)  # SIU^S12
    subject_type: str = Field(default="appointment", max_length=40)
    subject_id: int | None = Field(default=None, index=True)
    body: str  # ER7 text, `\r` between segments
    status: str = Field(default="pending", max_length=20)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = ts_field(default_now=True)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = ts_field(default_now=True)
    sent_at: datetime | None = ts_field(nullable=True)


class HL7AppointmentLink(SQLModel, table=True):
    """Per appointment: the HIS's id for it and the version we last reported.

    The sender compares `reported_version` with the appointment's `version` to find what
    changed since, whichever path changed it (GraphQL, PAD sync, Official Account, HL7).
    """

    __tablename__ = "hl7_appointment_link"

    appointment_id: int = Field(primary_key=True)
    his_appointment_id: str | None = Field(default=None, unique=True, max_length=80)
    reported_version: int = Field(default=0)
    reported_status: str | None = Field(default=None, max_length=20)
    reported_starts_at: datetime | None = ts_field(nullable=True)
    updated_at: datetime = ts_field(default_now=True)
