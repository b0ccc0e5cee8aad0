"""Departments, users, their roles and their identities on DingTalk, WeCom and WeChat."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from api.models.base import json_field, ts_field


class Role(StrEnum):
    ADMIN = "admin"
    SURGEON = "surgeon"
    DEPT_HEAD = "dept_head"  # 科主任
    MEDICAL_AFFAIRS = "medical_affairs"  # 医务处
    VICE_PRESIDENT = "vice_president"  # 分管副院长
    PARTY_BRANCH = "party_branch"  # 党支部
    COMMITTEE = "committee"  # 医疗技术临床应用管理委员会 (authorization committee)
    THERAPIST = "therapist"
    NURSE = "nurse"
    PATIENT = "patient"
    QUALITY = "quality"  # functional departments that score bad practice (药剂科, 感染办 …)


class Department(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(unique=True, max_length=40)
    name: str = Field(max_length=100)
    name_en: str = Field(default="", max_length=100)
    # No foreign key: user.department_id already points here, and a cycle of keys would
    # make every insert order-dependent. The domain keeps it pointing at a real user.
    head_user_id: int | None = Field(default=None, nullable=True)


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True, max_length=80)
    display_name: str = Field(max_length=100)
    password_hash: str | None = Field(default=None, max_length=255)
    department_id: int | None = Field(default=None, foreign_key="department.id", index=True)
    roles: list[str] = json_field(default_factory=list)
    superior_id: int | None = Field(default=None, foreign_key="user.id", nullable=True)
    mobile: str | None = Field(default=None, max_length=32)
    # 工号: the hospital's staff number, how the directory and the import files match people.
    job_number: str | None = Field(default=None, max_length=40, unique=True, nullable=True)
    is_active: bool = Field(default=True)
    # An initial password handed out by an import must be changed at the first sign-in.
    password_must_change: bool = Field(default=False)
    # Bumped to revoke every token the user holds (logout everywhere, password change).
    token_version: int = Field(default=0)
    failed_logins: int = Field(default=0)
    locked_until: datetime | None = ts_field(nullable=True)
    created_at: datetime = ts_field(default_now=True)


class ExternalIdentity(SQLModel, table=True):
    """A user's id on a platform: DingTalk userid, WeCom userid, Official Account openid."""

    __tablename__ = "external_identity"
    __table_args__ = (
        sa.UniqueConstraint(
            "provider", "external_id", name="uq_external_identity_provider_external"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    provider: str = Field(max_length=20)  # dingtalk | wecom | wechat_oa
    external_id: str = Field(max_length=128)
    bound_at: datetime = ts_field(default_now=True)
