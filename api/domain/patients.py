"""The patient archive (患者档案): creating and updating patients, and who may see them.

Rule of access, in one place:
- medical affairs and admins see every patient;
- other staff see the patients of their own department;
- a patient sees only their own archive.
Every read that returns patient data is written to the access log by the caller's
adapter through `api.audit.record_access`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor
from api.crypto import FieldCipher, mask_middle
from api.errors import DomainError, ErrorCode, forbidden, invalid, not_found
from api.models.base import utcnow
from api.models.patients import Patient, PatientFlag
from api.models.people import Department, Role

SEES_ALL = (Role.ADMIN, Role.MEDICAL_AFFAIRS, Role.VICE_PRESIDENT)


def can_see_patient(actor: Actor, patient: Patient) -> bool:
    if actor.has_role(*SEES_ALL):
        return True
    if actor.has_role(Role.PATIENT):
        return patient.user_id == actor.user_id
    return actor.department_id is not None and patient.department_id == actor.department_id


def visible_patients_clause(actor: Actor) -> sa.ColumnElement[bool]:
    """The same rule as `can_see_patient`, as a WHERE clause for lists."""
    if actor.has_role(*SEES_ALL):
        return sa.true()
    if actor.has_role(Role.PATIENT):
        return Patient.user_id == actor.user_id
    if actor.department_id is None:
        return sa.false()
    return Patient.department_id == actor.department_id


async def access_patient(session: AsyncSession, actor: Actor, patient_id: int) -> Patient:
    patient = await session.get(Patient, patient_id)
    if patient is None:
        raise not_found("患者", "patient")
    if not can_see_patient(actor, patient):
        raise forbidden("无权查看该患者 / not allowed to see this patient")
    return patient


async def search_patients(
    session: AsyncSession, actor: Actor, cipher: FieldCipher, search: str | None, *, limit: int = 50
) -> list[Patient]:
    stmt = (
        sa.select(Patient)
        .where(visible_patients_clause(actor))
        .order_by(Patient.id)
        .limit(min(limit, 200))
    )
    if search:
        term = search.strip()
        if len(term) > 100:
            raise invalid("search", "搜索词过长 / search term too long")
        digests = cipher.lookup_hashes(term)  # current key first; previous keys until rotated
        stmt = stmt.where(
            sa.or_(
                Patient.name.startswith(term),
                Patient.mrn == term,
                Patient.id_number_hash.in_(digests),
                Patient.phone_hash.in_(digests),
            )
        )
    return list((await session.execute(stmt)).scalars())


@dataclass
class PatientData:
    mrn: str
    name: str
    gender: str = "U"
    birth_date: date | None = None
    id_number: str | None = None
    phone: str | None = None
    department_code: str | None = None
    allergies: list[str] | None = None


async def upsert_patient(
    session: AsyncSession, cipher: FieldCipher, data: PatientData, *, actor: Actor
) -> tuple[Patient, bool]:
    """Create the archive on first sight (HIS admission, first treatment), else update it.

    Returns the patient and whether it was created.
    """
    if not data.mrn or len(data.mrn) > 40:
        raise invalid("mrn", "病历号无效 / invalid medical record number")
    if not data.name or len(data.name) > 100:
        raise invalid("name", "姓名无效 / invalid name")
    if data.gender not in ("M", "F", "U", "O"):
        raise invalid("gender", "性别无效 / invalid gender")
    department_id = None
    if data.department_code:
        department_id = (
            await session.execute(
                sa.select(Department.id).where(Department.code == data.department_code)
            )
        ).scalar_one_or_none()
        if department_id is None:
            raise invalid("department", f"科室不存在 / unknown department: {data.department_code}")
    patient = (
        await session.execute(sa.select(Patient).where(Patient.mrn == data.mrn).with_for_update())
    ).scalar_one_or_none()
    created = patient is None
    if patient is None:
        patient = Patient(mrn=data.mrn, name=data.name)
        session.add(patient)
    patient.name = data.name
    patient.gender = data.gender
    if data.birth_date:
        patient.birth_date = data.birth_date
    if data.id_number:
        patient.id_number_enc = cipher.encrypt(data.id_number)
        patient.id_number_hash = cipher.lookup_hash(data.id_number)
    if data.phone:
        patient.phone_enc = cipher.encrypt(data.phone)
        patient.phone_hash = cipher.lookup_hash(data.phone)
    if department_id is not None:
        patient.department_id = department_id
    if data.allergies is not None:
        patient.allergies = list(data.allergies)
    patient.updated_at = utcnow()
    await session.flush()
    return patient, created


def age_on(birth_date: date | None, day: date) -> int | None:
    """Age in whole years on `day` (None without a birth date)."""
    if birth_date is None:
        return None
    return day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))


def masked_id_number(cipher: FieldCipher, patient: Patient) -> str | None:
    return mask_middle(cipher.decrypt(patient.id_number_enc), 4, 4)


def masked_phone(cipher: FieldCipher, patient: Patient) -> str | None:
    return mask_middle(cipher.decrypt(patient.phone_enc), 3, 4)


async def open_contraindications(session: AsyncSession, patient_id: int) -> list[PatientFlag]:
    stmt = sa.select(PatientFlag).where(
        PatientFlag.patient_id == patient_id,
        PatientFlag.is_open.is_(True),
        PatientFlag.is_contraindication.is_(True),
    )
    return list((await session.execute(stmt)).scalars())


async def raise_flag(
    session: AsyncSession,
    patient: Patient,
    *,
    code: str,
    description: str,
    actor: Actor,
    contraindication: bool = True,
) -> PatientFlag:
    if not code or len(code) > 40:
        raise invalid("code", "标记代码无效 / invalid flag code")
    assert patient.id is not None
    flag = PatientFlag(
        patient_id=patient.id,
        code=code,
        description=description[:500],
        is_contraindication=contraindication,
    )
    session.add(flag)
    await session.flush()
    return flag


async def close_flag(session: AsyncSession, flag_id: int, *, actor: Actor) -> PatientFlag:
    flag = await session.get(PatientFlag, flag_id)
    if flag is None:
        raise not_found("标记", "flag")
    if not flag.is_open:
        raise DomainError(ErrorCode.CONFLICT, "标记已关闭 / flag already closed")
    flag.is_open = False
    flag.closed_at = utcnow()
    await session.flush()
    return flag


# Fields a bedside user may correct on the archive (the rest comes from HIS admission).
BEDSIDE_EDITABLE_FIELDS = ("gender", "birth_date", "allergies")
MAX_ALLERGIES = 50


async def update_patient_details(
    session: AsyncSession, patient: Patient, changes: dict[str, object], *, actor: Actor
) -> Patient:
    """Correct bedside-editable fields of a patient's archive (from a PAD or the web).

    Staff of the patient's department (or who see every patient) only; patients cannot
    edit their own clinical data.
    """
    if actor.has_role(Role.PATIENT) or not can_see_patient(actor, patient):
        raise forbidden("无权修改该患者档案 / not allowed to edit this patient")
    for name, value in changes.items():
        if name not in BEDSIDE_EDITABLE_FIELDS:
            raise invalid(name, f"该字段不可修改 / field cannot be edited: {name}")
        if name == "gender" and value not in ("M", "F", "U", "O"):
            raise invalid("gender", "性别无效 / invalid gender")
        if name == "birth_date":
            if isinstance(value, str):
                try:
                    value = date.fromisoformat(value)
                except ValueError:
                    raise invalid("birthDate", "出生日期无效 / invalid birth date") from None
            if value is not None and (not isinstance(value, date) or value > date.today()):
                raise invalid("birthDate", "出生日期无效 / invalid birth date")
        if name == "allergies":
            if not isinstance(value, list) or len(value) > MAX_ALLERGIES:
                raise invalid("allergies", "过敏史格式无效 / invalid allergy list")
            cleaned: list[str] = []
            for item in value:
                if not isinstance(item, str) or not item.strip() or len(item) > 100:
                    raise invalid("allergies", "过敏原无效 / invalid allergen")
                if item.strip() not in cleaned:
                    cleaned.append(item.strip())
            value = cleaned
        setattr(patient, name, value)
    patient.updated_at = utcnow()
    await session.flush()
    return patient
