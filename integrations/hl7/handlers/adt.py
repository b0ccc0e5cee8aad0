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


def patient_identifiers(msg: InboundMessage, ctx: HandlerContext) -> tuple[str, str | None]:
    """(medical record number, national id number) from the repetitions of PID-3."""
    pid = msg.segment("PID")
    mapping = ctx.config.mapping
    mrn = ""
    id_number = None
    for rep in range(1, msg.repetitions(pid, 3) + 1):
        value = msg.value(pid, 3, 1, rep)
        kind = msg.value(pid, 3, 5, rep).upper()
        if not value:
            continue
        if kind in mapping.id_number_identifier_types and id_number is None:
            id_number = value
        elif kind in mapping.mrn_identifier_types and not mrn:
            mrn = value
    if not mrn:
        # Older feeds (v2.3) put the id in PID-2 (external id) only.
        mrn = msg.value(pid, 2)
    if not mrn:
        raise missing("缺少病历号 PID-3 / PID-3 patient identifier (MR) is required", "PID", 3)
    return mrn, id_number


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
    phone = None
    for rep in range(1, msg.repetitions(pid, 13) + 1):
        # XTN-12 (unformatted number) in v2.5, XTN-1 in older feeds.
        phone = msg.value(pid, 13, 12, rep) or msg.value(pid, 13, 1, rep)
        if phone:
            break
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
        phone=phone,
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
