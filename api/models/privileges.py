"""The surgery catalog (手术目录), privilege grants (手术分级授权) and suspensions.

A grant's terms (who, which grade or procedure, validity) are never edited: a change is a
revocation and a new grant, so the rows themselves answer "which privilege held on day X".
Every state change is also appended to the hash chain `privilege:{grant id}` (suspensions:
`privilege-suspension:{id}`).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from api.models.base import ts_field


class ProcedureLevel(StrEnum):
    NATIONAL = "national"  # 国家级 (national grading catalog)
    PROVINCIAL = "provincial"  # 省级 (provincial / DRG)
    HOSPITAL = "hospital"  # 院级


class Procedure(SQLModel, table=True):
    """One operation in the catalog with its grade (1-4)."""

    __tablename__ = "surgery_procedure"
    __table_args__ = (sa.CheckConstraint("grade BETWEEN 1 AND 4", name="grade_range"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, index=True, max_length=40)
    name: str = Field(max_length=200)
    name_en: str = Field(default="", max_length=200)
    grade: int
    level: str = Field(default=ProcedureLevel.HOSPITAL.value, max_length=20)
    active: bool = Field(default=True)
    created_at: datetime = ts_field(default_now=True)


class GrantStatus(StrEnum):
    PENDING = "pending"  # its approval instance is running
    ACTIVE = "active"
    REJECTED = "rejected"  # the approval ended without granting
    REVOKED = "revoked"


class PrivilegeGrant(SQLModel, table=True):
    """A surgeon's privilege: up to `max_grade`, or one `procedure_code`."""

    __tablename__ = "privilege_grant"
    __table_args__ = (
        sa.CheckConstraint(
            "(max_grade IS NULL) <> (procedure_code IS NULL)", name="grade_or_procedure"
        ),
        sa.Index("ix_privilege_grant_surgeon_scope", "surgeon_id", "scope"),
    )

    id: int | None = Field(default=None, primary_key=True)
    surgeon_id: int = Field(foreign_key="user.id")
    scope: str = Field(default="surgery", max_length=20)  # surgery | prescribing | antibiotics …
    max_grade: int | None = Field(default=None)
    procedure_code: str | None = Field(default=None, max_length=40)
    valid_from: datetime = ts_field()
    valid_until: datetime | None = ts_field(nullable=True)
    reason: str = Field(default="", max_length=500)
    status: str = Field(default=GrantStatus.PENDING.value, max_length=20, index=True)
    requested_by: int | None = Field(default=None, foreign_key="user.id")
    approval_instance_id: int | None = Field(default=None, index=True)
    requested_at: datetime = ts_field(default_now=True)
    granted_at: datetime | None = ts_field(nullable=True)
    revoked_at: datetime | None = ts_field(nullable=True)
    revoked_by: int | None = Field(default=None, foreign_key="user.id")
    revoke_reason: str | None = Field(default=None, max_length=500)
    # The grant this one replaces (revoke-and-regrant), for reading the history.
    replaces_id: int | None = Field(default=None, foreign_key="privilege_grant.id")


class PrivilegeSuspension(SQLModel, table=True):
    """A period in which a surgeon's privileges of one scope do not hold (进修, 下乡, penalty)."""

    __tablename__ = "privilege_suspension"
    __table_args__ = (sa.Index("ix_privilege_suspension_surgeon_scope", "surgeon_id", "scope"),)

    id: int | None = Field(default=None, primary_key=True)
    surgeon_id: int = Field(foreign_key="user.id")
    scope: str = Field(default="surgery", max_length=20)
    reason: str = Field(max_length=500)
    source: str = Field(default="manual", max_length=60)  # manual | penalty:<id> | training …
    starts_at: datetime = ts_field()
    ends_at: datetime | None = ts_field(nullable=True)
    created_by: int | None = Field(default=None, foreign_key="user.id")
    created_at: datetime = ts_field(default_now=True)
    lifted_at: datetime | None = ts_field(nullable=True)
    lifted_by: int | None = Field(default=None, foreign_key="user.id")
    lift_reason: str | None = Field(default=None, max_length=500)
