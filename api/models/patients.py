"""Patients: the archive (患者档案) every capability refers to.

The ID number and phone are stored encrypted (api.crypto) and shown masked; a keyed hash
of each allows lookup (binding a WeChat openid) without decrypting the table.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Field, SQLModel

from api.models.base import json_field, ts_field


class Patient(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    mrn: str = Field(unique=True, index=True, max_length=40)  # 病历号 / HIS patient id
    name: str = Field(max_length=100)
    gender: str = Field(default="U", max_length=1)  # M | F | U
    birth_date: date | None = None
    id_number_enc: str | None = Field(default=None, max_length=512)
    id_number_hash: str | None = Field(default=None, index=True, max_length=64)
    phone_enc: str | None = Field(default=None, max_length=512)
    phone_hash: str | None = Field(default=None, index=True, max_length=64)
    address_enc: str | None = Field(default=None, max_length=1024)  # 住址, encrypted
    department_id: int | None = Field(default=None, foreign_key="department.id", index=True)
    user_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    allergies: list[str] = json_field(default_factory=list)
    created_at: datetime = ts_field(default_now=True)
    updated_at: datetime = ts_field(default_now=True)


class PatientFlag(SQLModel, table=True):
    """A clinical flag on a patient; an open contraindication fails the surgery pre-check."""

    __tablename__ = "patient_flag"

    id: int | None = Field(default=None, primary_key=True)
    patient_id: int = Field(foreign_key="patient.id", index=True)
    code: str = Field(max_length=40)
    description: str = Field(max_length=500)
    is_contraindication: bool = Field(default=True)
    is_open: bool = Field(default=True)
    raised_at: datetime = ts_field(default_now=True)
    closed_at: datetime | None = ts_field(nullable=True)
