"""ADT^A01 (admit), A04 (register), A08 (update): the patient archive from the HIS.

PID-3 carries the identifiers (the repetition typed MR is our medical record number, a
national id type gives the ID number), PID-5 the name (Chinese names are family^given,
written together without a space), PV1-3 the ward, AL1 rows the allergies.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.domain.patients import PatientData, upsert_patient
from api.models.patients import Patient
from api.models.people import Department
from integrations.hl7.handlers import HandlerContext, MessageError, handles, missing, unknown_key
from integrations.hl7.parse import InboundMessage, parse_hl7_date

GENDERS = {"M": "M", "F": "F", "U": "U", "O": "O", "A": "O", "N": "U", "男": "M", "女": "F"}


def identifier_matches(rule: str, kind: str, authority: str) -> bool:
    """`TYPE` or `TYPE@AUTHORITY` against a CX's type code (CX-5) and authority (CX-4.1)."""
    rule_kind, _, rule_authority = rule.upper().partition("@")
    return rule_kind == kind and (not rule_authority or rule_authority == authority)


def patient_identifiers(msg: InboundMessage, ctx: HandlerContext) -> tuple[str, str | None]:
    """(medical record number, national id number) from the repetitions of PID-3.

    PID-3 is CX (HL7 v2.5 chapter 2A, data type CX): CX-1 ID number, CX-4 assigning authority (HD, its
    first component the namespace id), CX-5 identifier type code (table 0203). The record
    number is chosen by the configured rules in their order, not by repetition order, so
    an HIS that sends 门诊号 and 住院号 in either order keeps one record number.
    """
    pid = msg.segment("PID")
    mapping = ctx.config.mapping
    found: list[tuple[str, str, str]] = []
    for rep in range(1, msg.repetitions(pid, 3) + 1):
        value = msg.value(pid, 3, 1, rep)
        if value:
            found.append(
                (value, msg.value(pid, 3, 5, rep).upper(), msg.value(pid, 3, 4, rep).upper())
            )
    id_number = next(
        (v for v, kind, _ in found if kind in mapping.id_number_identifier_types), None
    )
    mrn = ""
    for rule in mapping.mrn_identifier_types:
        mrn = next((v for v, kind, auth in found if identifier_matches(rule, kind, auth)), "")
        if mrn:
            break
    if not mrn:
        # Older feeds (v2.3) put the id in PID-2 (external id) only.
        mrn = msg.value(pid, 2)
    if not mrn:
        raise missing("缺少病历号 PID-3 / PID-3 patient identifier (MR) is required", "PID", 3)
    return mrn, id_number


def phone_number(msg: InboundMessage) -> str | None:
    """The patient's phone from PID-13 (home) or PID-14 (business), mobile first.

    XTN (HL7 v2.5 chapter 2A, data type XTN): XTN-1 telephone number (deprecated, free text), XTN-2 use code
    (table 0201), XTN-3 equipment type (table 0202, `CP` cellular phone), XTN-5 country
    code, XTN-6 area/city code, XTN-7 local number, XTN-12 unformatted telephone number.
    Stored as the digits a patient types when binding the Official Account (an 11-digit
    mobile without +86).
    """
    pid = msg.segment("PID")
    candidates: list[tuple[int, str]] = []
    for field in (13, 14):
        for rep in range(1, msg.repetitions(pid, field) + 1):
            number = normalize_phone(
                msg.value(pid, field, 12, rep)
                or (msg.value(pid, field, 6, rep) + msg.value(pid, field, 7, rep))
                or msg.value(pid, field, 1, rep),
                msg.value(pid, field, 5, rep),
            )
            if number:
                mobile = msg.value(pid, field, 3, rep).upper() == "CP"
                candidates.append((0 if mobile else 1, number))
    if not candidates:
        return None
    return min(candidates, key=lambda c: c[0])[1]


def normalize_phone(raw: str, country: str = "") -> str:
    digits = "".join(ch for ch in raw if ch.isdigit())
    if raw.strip().startswith("+") or country:
        code = "".join(ch for ch in country if ch.isdigit()) or "86"
        if code == "86" and digits.startswith("86") and len(digits) > 11:
            digits = digits[2:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits[:20]


def patient_address(msg: InboundMessage) -> str | None:
    """PID-11 (XAD, HL7 v2.5 chapter 2A, data type XAD) written the Chinese way, largest unit first.

    XAD-1 street address (SAD, its first component the street), XAD-2 other designation,
    XAD-3 city, XAD-4 state or province, XAD-5 zip, XAD-6 country, XAD-7 address type,
    XAD-8 other geographic designation, XAD-9 county/parish code (区/县). The repetition
    typed H (home) is preferred, else the first.
    """
    pid = msg.segment("PID")
    reps = msg.repetitions(pid, 11)
    if not reps:
        return None
    chosen = next((r for r in range(1, reps + 1) if msg.value(pid, 11, 7, r).upper() == "H"), 1)
    parts = [
        msg.value(pid, 11, 4, chosen),
        msg.value(pid, 11, 3, chosen),
        msg.value(pid, 11, 9, chosen),
        msg.value(pid, 11, 8, chosen),
        msg.value(pid, 11, 1, chosen),
        msg.value(pid, 11, 2, chosen),
    ]
    seen: list[str] = []
    for part in parts:
        if part and part not in seen:
            seen.append(part)
    return "".join(seen)[:300] or None


def patient_name(msg: InboundMessage) -> str:
    pid = msg.segment("PID")
    # The first repetition whose name type (XPN-7) is legal ("L") or empty.
    chosen = 1
    for rep in range(1, msg.repetitions(pid, 5) + 1):
        if msg.value(pid, 5, 7, rep).upper() in ("L", ""):
            chosen = rep
            break
    family, given = msg.value(pid, 5, 1, chosen), msg.value(pid, 5, 2, chosen)
    if family.isascii() and given.isascii():
        return " ".join(part for part in (given, family) if part)
    return family + given


async def find_patient(session: AsyncSession, msg: InboundMessage, ctx: HandlerContext) -> Patient:
    """The archived patient the message is about (AE 204 when the archive has none)."""
    mrn, _ = patient_identifiers(msg, ctx)
    patient = (
        await session.execute(sa.select(Patient).where(Patient.mrn == mrn))
    ).scalar_one_or_none()
    if patient is None:
        raise unknown_key("患者不存在，请先发送 ADT / unknown patient; send ADT first", "PID", 3)
    return patient


async def patient_for_order(
    session: AsyncSession, msg: InboundMessage, ctx: HandlerContext
) -> tuple[Patient, bool]:
    """The order's patient; one not archived yet is created from a full PID when configured.

    Full means a record number (PID-3) and a name (PID-5): what the archive needs. Many
    HIS send no ADT^A04 to subsystems for outpatients, only the order.
    """
    try:
        return await find_patient(session, msg, ctx), False
    except MessageError:
        pid = msg.segment("PID")
        if not ctx.config.mapping.create_patients_from_orders or not msg.value(pid, 5, 1):
            raise
    data = patient_data(msg, ctx)
    data.department_code = await department_code(session, msg, ctx)
    patient, created = await upsert_patient(session, ctx.services.cipher, data, actor=ctx.actor)
    return patient, created


async def department_code(
    session: AsyncSession, msg: InboundMessage, ctx: HandlerContext
) -> str | None:
    """Our department for PV1-3 (ward) or PV1-10 (service); None leaves it as it is."""
    pv1 = msg.segment("PV1")
    for code in (msg.value(pv1, 3, 1), msg.value(pv1, 10, 1)):
        if not code:
            continue
        mapped = ctx.config.mapping.departments.get(code, code)
        if mapped in ctx.known_departments:
            return mapped
        exists = (
            await session.execute(sa.select(Department.id).where(Department.code == mapped))
        ).scalar_one_or_none()
        if exists is not None:
            ctx.known_departments.add(mapped)
            return mapped
    return None


def patient_data(msg: InboundMessage, ctx: HandlerContext) -> PatientData:
    pid = msg.segment("PID")
    mrn, id_number = patient_identifiers(msg, ctx)
    try:
        birth_date = parse_hl7_date(msg.value(pid, 7))
    except ValueError:
        raise MessageError(
            "102", "出生日期格式错误 / PID-7 birth date is not YYYYMMDD", segment="PID", field=7
        ) from None
    allergies = [
        text
        for al1 in msg.segments("AL1")
        if (text := msg.value(al1, 3, 2) or msg.value(al1, 3, 1))
    ]
    return PatientData(
        mrn=mrn,
        name=patient_name(msg),
        gender=GENDERS.get(msg.value(pid, 8).upper(), "U"),
        birth_date=birth_date,
        id_number=id_number,
        phone=phone_number(msg),
        address=patient_address(msg),
        allergies=allergies or None,
    )


@handles(("ADT", "A01"), ("ADT", "A04"), ("ADT", "A08"))
async def apply_adt(
    session: AsyncSession, ctx: HandlerContext, msg: InboundMessage
) -> dict[str, Any]:
    if msg.segment("PID") is None:
        raise missing("缺少 PID 段 / PID segment is required", "PID", 0)
    data = patient_data(msg, ctx)
    if not data.name:
        raise missing("缺少患者姓名 / PID-5 patient name is required", "PID", 5)
    if msg.trigger == "A08":
        await find_patient(session, msg, ctx)  # an update for someone we never admitted is an error
    data.department_code = await department_code(session, msg, ctx)
    # The HIS is where identity comes from: its name, ID number and phone replace ours.
    patient, created = await upsert_patient(
        session, ctx.services.cipher, data, actor=ctx.actor, identity_from_his=True
    )
    return {"patient_id": patient.id, "created": created}
