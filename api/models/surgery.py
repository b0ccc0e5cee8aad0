"""A surgery application (手术申请): the clinical part of a `surgery` approval instance.

The approval instance (engine) holds the routing, tasks and history; this row holds what
the surgeon applied for, the emergency override if one was used, and the approval notice
(手术审批通知书) generated on final approval.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from api.models.base import json_field, ts_field


class SurgeryApplication(SQLModel, table=True):
    __tablename__ = "surgery_application"

    id: int | None = Field(default=None, primary_key=True)
    instance_id: int | None = Field(default=None, unique=True, index=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    surgeon_id: int = Field(foreign_key="user.id", index=True)
    applicant_id: int = Field(foreign_key="user.id")
    department_id: int | None = Field(default=None, foreign_key="department.id")
    procedure_code: str = Field(max_length=40)
    grade: int
    planned_at: datetime = ts_field()
    emergency: bool = Field(default=False)
    diagnosis: str = Field(max_length=1000)
    anesthesia: str = Field(max_length=200)
    preop_assessment: str | None = Field(default=None, max_length=4000)
    consent_signed: bool = Field(default=False)
    # The sha256 of each pre-operative document uploaded with it (POST /attachments).
    attachments: list[str] = json_field(default_factory=list)
    # The privilege grant the pre-check found; none when an emergency override was used.
    privilege_grant_id: int | None = Field(default=None, foreign_key="privilege_grant.id")
    emergency_override: bool = Field(default=False)
    override_reason: str | None = Field(default=None, max_length=500)
    # The superior's confirmation (a one-step approval instance started with this one).
    override_instance_id: int | None = Field(default=None, index=True)
    override_confirmed_at: datetime | None = ts_field(nullable=True)
    override_confirmed_by: int | None = Field(default=None, foreign_key="user.id")
    submitted_at: datetime = ts_field(default_now=True, index=True)
    notice_path: str | None = Field(default=None, max_length=500)
    notice_sha256: str | None = Field(default=None, max_length=64)
    notice_generated_at: datetime | None = ts_field(nullable=True)
