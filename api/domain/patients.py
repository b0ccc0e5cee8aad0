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

from api.audit import append_event
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
    """The patient, if the actor may see them; NOT_FOUND alike for "not there" and "not
    yours", so patient ids cannot be probed."""
    patient = await session.get(Patient, patient_id)
    if patient is None or not can_see_patient(actor, patient):
        raise not_found("患者", "patient")
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
    address: str | None = None
    department_code: str | None = None
    allergies: list[str] | None = None


# Who the patient is: only the HIS (ADT) or an audited correction changes these on an
# existing archive, because name, ID number and phone are what binding an Official Account
# openid proves (api.domain.patient_binding).
IDENTITY_FIELDS = ("name", "id_number", "phone")
CORRECTORS = (Role.MEDICAL_AFFAIRS, Role.ADMIN)
IDENTITY_FROM_HIS = (
    "身份信息（姓名、身份证号、手机号）以 HIS 为准，如需更正请联系医务处 / identity (name, ID "
    "number, phone) comes from the HIS: ask medical affairs to correct it"
)


def plain_text(field: str, value: str | None, max_length: int) -> str | None:
    """A stripped one-line value (None when empty): VALIDATION for control characters,
    lone surrogates or too many characters, which the database would refuse."""
    value = (value or "").strip()
    if not value:
        return None
    if len(value) > max_length:
        raise invalid(field, f"最多 {max_length} 个字符 / at most {max_length} characters")
    if any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        raise invalid(field, "含有无效字符 / contains invalid characters")
    return value


def check_reason(reason: str | None) -> str:
    """The reason a privileged change of the archive gives (kept in the patient's history)."""
    text = (reason or "").replace("\n", " ")
    checked = plain_text("reason", text, 500)
    if checked is None:
        raise invalid(
            "reason", "请填写原因（500 字以内） / a reason is required (at most 500 characters)"
        )
    return checked


def history_stream(patient_id: int) -> str:
    """The patient's hash-chained history (api.audit): identity changes, unbinding."""
    return f"patient:{patient_id}"


def identity_changes(
    cipher: FieldCipher,
    patient: Patient,
    *,
    name: str | None,
    id_number: str | None,
    phone: str | None,
) -> list[str]:
    """The identity fields a supplied value would change (None: not supplied)."""
    changed = []
    if name is not None and name != patient.name:
        changed.append("name")
    for field, value, stored in (
        ("id_number", id_number, patient.id_number_hash),
        ("phone", phone, patient.phone_hash),
    ):
        if value and stored not in cipher.lookup_hashes(value):
            changed.append(field)
    return changed


def _identity_value(cipher: FieldCipher, field: str, value: str | None) -> dict[str, str | None]:
    """How a value goes into the history: the name as is; numbers masked and encrypted."""
    if field == "name":
        return {"value": value}
    keep = (4, 4) if field == "id_number" else (3, 4)
    return {"masked": mask_middle(value, *keep), "enc": cipher.encrypt(value)}


async def _record_identity_change(
    session: AsyncSession,
    cipher: FieldCipher,
    patient: Patient,
    changed: dict[str, tuple[str | None, str | None]],
    *,
    action: str,
    actor: Actor,
    reason: str | None = None,
) -> None:
    assert patient.id is not None
    await append_event(
        session,
        history_stream(patient.id),
        action,
        actor=actor,
        data={
            "patient_id": patient.id,
            "via": actor.via,
            "reason": reason,
            "changes": {
                field: {
                    "old": _identity_value(cipher, field, old),
                    "new": _identity_value(cipher, field, new),
                }
                for field, (old, new) in sorted(changed.items())
            },
        },
    )


def _apply_identity(
    cipher: FieldCipher, patient: Patient, field: str, value: str
) -> tuple[str | None, str | None]:
    """Set one identity field; (old, new) in clear for the history."""
    old: str | None
    if field == "name":
        old, patient.name = patient.name, value
        return old, value
    if field == "id_number":
        old = cipher.decrypt(patient.id_number_enc)
        patient.id_number_enc = cipher.encrypt(value)
        patient.id_number_hash = cipher.lookup_hash(value)
        return old, value
    old = cipher.decrypt(patient.phone_enc)
    patient.phone_enc = cipher.encrypt(value)
    patient.phone_hash = cipher.lookup_hash(value)
    return old, value


async def upsert_patient(
    session: AsyncSession,
    cipher: FieldCipher,
    data: PatientData,
    *,
    actor: Actor,
    identity_from_his: bool = False,
) -> tuple[Patient, bool]:
    """Create the archive on first sight (HIS admission, first treatment), else update it.

    On an existing archive name, ID number and phone change only when `identity_from_his`
    (the ADT path), each change appended to the patient's history; any other caller
    supplying different (or missing) identity gets IDENTITY_MISMATCH and nothing changes.
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
    changed: dict[str, tuple[str | None, str | None]] = {}
    if patient is None:
        patient = Patient(mrn=data.mrn, name=data.name)
        session.add(patient)
        if data.id_number:
            _apply_identity(cipher, patient, "id_number", data.id_number)
        if data.phone:
            _apply_identity(cipher, patient, "phone", data.phone)
    else:
        fields = identity_changes(
            cipher, patient, name=data.name, id_number=data.id_number, phone=data.phone
        )
        if fields and not identity_from_his:
            raise DomainError(
                ErrorCode.IDENTITY_MISMATCH,
                IDENTITY_FROM_HIS,
                field={"name": "name", "id_number": "idNumber", "phone": "phone"}[fields[0]],
                details={"fields": fields},
            )
        values = {"name": data.name, "id_number": data.id_number, "phone": data.phone}
        for field in fields:
            changed[field] = _apply_identity(cipher, patient, field, values[field] or "")
    patient.gender = data.gender
    if data.birth_date:
        patient.birth_date = data.birth_date
    if data.address:
        patient.address_enc = cipher.encrypt(data.address[:300])
    if department_id is not None:
        patient.department_id = department_id
    if data.allergies is not None:
        patient.allergies = list(data.allergies)
    patient.updated_at = utcnow()
    await session.flush()
    if changed:
        await _record_identity_change(
            session, cipher, patient, changed, action="identity_updated", actor=actor
        )
    return patient, created


async def correct_patient_identity(
    session: AsyncSession,
    cipher: FieldCipher,
    patient: Patient,
    *,
    actor: Actor,
    reason: str,
    name: str | None = None,
    id_number: str | None = None,
    phone: str | None = None,
) -> Patient:
    """更正身份信息: medical affairs or an admin corrects name, ID number or phone of an
    archive, with a reason; old and new values go to the patient's hash-chained history."""
    if not actor.has_role(*CORRECTORS) or actor.has_role(Role.PATIENT):
        raise forbidden(
            "只有医务处或管理员可以更正患者身份信息 / only medical affairs or an admin may correct a patient's identity"
        )
    reason = check_reason(reason)
    given = {
        "name": plain_text("name", name, 100),
        "id_number": plain_text("idNumber", id_number, 64),
        "phone": plain_text("phone", phone, 64),
    }
    fields = identity_changes(cipher, patient, **given)
    if not fields:
        raise invalid("name", "没有需要更正的内容 / nothing to correct")
    changed = {f: _apply_identity(cipher, patient, f, given[f] or "") for f in fields}
    patient.updated_at = utcnow()
    await session.flush()
    await _record_identity_change(
        session, cipher, patient, changed, action="identity_corrected", actor=actor, reason=reason
    )
    return patient


# 复姓: the two-character family names common enough to be told apart from a given name.
COMPOUND_SURNAMES = frozenset(
    "欧阳 司马 诸葛 上官 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 轩辕 令狐 端木 独孤"
    " 南宫 西门 百里 呼延 万俟 澹台 公冶 宗政 濮阳 淳于 单于 太叔 申屠 钟离 闻人 赫连 拓跋".split()
)


def name_parts(name: str) -> tuple[str, str]:
    """(family, given) of a stored name: 欧阳秀兰 -> (欧阳, 秀兰); "Ann Smith" -> (Smith, Ann).

    Names are stored as the HIS writes them together (family then given, no space, for
    Chinese names); HL7 XPN and FHIR HumanName want the parts back.
    """
    name = name.strip()
    if not name:
        return "", ""
    if " " in name:
        given, _, family = name.rpartition(" ")
        return family, given
    if name.isascii() or len(name) < 2:
        return name, ""
    if name[:2] in COMPOUND_SURNAMES and len(name) > 2:
        return name[:2], name[2:]
    return name[:1], name[1:]


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
