"""What every treatment module shares: the hospital's clock, versions, access checks."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor
from api.domain.patients import can_see_patient
from api.errors import DomainError, ErrorCode, forbidden, not_found
from api.models.base import utcnow
from api.models.patients import Patient
from api.models.people import Role
from api.models.treatments import TreatmentItem

# Times are stored in UTC; days, working hours and the queue are the hospital's local ones.
HOSPITAL_TZ = ZoneInfo("Asia/Shanghai")

# Staff who enter orders, book for patients and treat at the bedside.
TREATMENT_STAFF = (Role.THERAPIST, Role.NURSE, Role.DEPT_HEAD, Role.ADMIN)
# Read-only oversight: statistics and archives across departments.
OVERSIGHT = (Role.ADMIN, Role.MEDICAL_AFFAIRS, Role.VICE_PRESIDENT)


class TreatmentErrorCode(StrEnum):
    """Codes beyond api.errors.ErrorCode; they reach GraphQL as `extensions.code`."""

    CONSENT_OUTDATED = "CONSENT_OUTDATED"
    CONSENT_REQUIRED = "CONSENT_REQUIRED"
    NO_SESSIONS_LEFT = "NO_SESSIONS_LEFT"
    SLOT_PASSED = "SLOT_PASSED"
    STALE_VERSION = "STALE_VERSION"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"
    UNSUPPORTED_TYPE = "UNSUPPORTED_TYPE"
    STORAGE_FULL = "STORAGE_FULL"


class Versioned(Protocol):
    version: int
    updated_at: datetime
    deleted_at: datetime | None


def now_or(now: datetime | None) -> datetime:
    if now is None:
        return utcnow()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def touch(row: Versioned, now: datetime) -> None:
    """Every update of a PAD-edited row bumps its version (the sync conflict marker)."""
    row.version = (row.version or 0) + 1
    row.updated_at = now


def check_version(row: Versioned, expected: int | None) -> None:
    """A PAD sends the version it edited; an older one means someone changed it since."""
    if expected is not None and expected != row.version:
        raise DomainError(
            TreatmentErrorCode.STALE_VERSION,
            "记录已被他人修改，请刷新后重试 / the record changed meanwhile, reload and retry",
            details={"currentVersion": row.version},
        )


def local_day_bounds(day: date, tz: ZoneInfo = HOSPITAL_TZ) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0, 0), tzinfo=tz).astimezone(UTC)
    return start, start + timedelta(days=1)


def local_day(moment: datetime, tz: ZoneInfo = HOSPITAL_TZ) -> date:
    return moment.astimezone(tz).date()


def is_staff(actor: Actor) -> bool:
    return actor.has_role(*TREATMENT_STAFF) or actor.has_role("system")


def require_treatment_staff(actor: Actor) -> None:
    if not is_staff(actor):
        raise forbidden("仅治疗科室人员可执行此操作 / only treatment staff may do this")


async def item_by_code(
    session: AsyncSession, code: str, *, field: str = "itemCode"
) -> TreatmentItem:
    item = (
        await session.execute(sa.select(TreatmentItem).where(TreatmentItem.code == code))
    ).scalar_one_or_none()
    if item is None or not item.is_active:
        raise DomainError(
            ErrorCode.NOT_FOUND, "治疗项目不存在 / treatment item not found", field=field
        )
    return item


async def load_patient(session: AsyncSession, actor: Actor, patient_id: int) -> Patient:
    """The patient, if the actor may see them (system actors see all).

    "Not yours" and "not there" get the same NOT_FOUND, so ids cannot be probed.
    """
    patient = await session.get(Patient, patient_id)
    if patient is None or (not actor.has_role("system") and not can_see_patient(actor, patient)):
        raise not_found("患者", "patient")
    return patient


async def patient_of_actor(session: AsyncSession, actor: Actor) -> Patient:
    """The archive of the signed-in patient."""
    patient = (
        await session.execute(sa.select(Patient).where(Patient.user_id == actor.user_id))
    ).scalar_one_or_none()
    if patient is None:
        raise DomainError(
            ErrorCode.NOT_FOUND, "未找到您的患者档案 / no patient archive is linked to your account"
        )
    return patient


def receipt_number(appointment_id: int, starts_at: datetime, tz: ZoneInfo = HOSPITAL_TZ) -> str:
    return f"YY{starts_at.astimezone(tz):%Y%m%d}{appointment_id:06d}"


def fmt_local(moment: datetime, tz: ZoneInfo = HOSPITAL_TZ) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value
