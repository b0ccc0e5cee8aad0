"""The patient's treatment archive (患者档案): built on the foundation's patient table.

Identifiers and access rules stay in `api.domain.patients`; here the archive gathers the
patient's orders and courses, appointments, records and follow-ups, and keeps allergies.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor
from api.crypto import FieldCipher
from api.domain.patients import PatientData, can_see_patient, upsert_patient
from api.domain.treatments.access import log_patient_access
from api.domain.treatments.appointments import appointments_for_patient
from api.domain.treatments.common import load_patient, now_or, require_treatment_staff
from api.domain.treatments.followups import follow_ups_for_patient
from api.domain.treatments.orders import orders_for_patient
from api.domain.treatments.records import records_for_patient
from api.errors import forbidden, invalid
from api.models.patients import Patient
from api.models.people import Department
from api.models.treatments import Appointment, FollowUp, TreatmentOrder, TreatmentRecord

MAX_ALLERGIES = 50


@dataclass
class PatientArchive:
    patient: Patient
    orders: list[TreatmentOrder]
    appointments: list[Appointment]
    records: list[TreatmentRecord]
    follow_ups: list[FollowUp]


async def patient_archive(session: AsyncSession, actor: Actor, patient_id: int) -> PatientArchive:
    """Everything about one patient's treatments (caller logs the access)."""
    patient = await load_patient(session, actor, patient_id)
    assert patient.id is not None
    return PatientArchive(
        patient=patient,
        orders=await orders_for_patient(session, patient.id, include_cancelled=True),
        appointments=await appointments_for_patient(session, patient.id),
        records=await records_for_patient(session, patient.id),
        follow_ups=await follow_ups_for_patient(session, patient.id),
    )


async def set_allergies(
    session: AsyncSession, patient: Patient, allergies: list[str], *, actor: Actor
) -> Patient:
    require_treatment_staff(actor)
    cleaned = list(dict.fromkeys(a.strip() for a in allergies if a and a.strip()))
    if len(cleaned) > MAX_ALLERGIES or any(len(a) > 100 for a in cleaned):
        raise invalid(
            "allergies",
            f"过敏史最多 {MAX_ALLERGIES} 条、每条 100 字 / at most {MAX_ALLERGIES} entries of 100 characters",
        )
    patient.allergies = cleaned
    patient.updated_at = now_or(None)
    await session.flush()
    await log_patient_access(
        session, actor, "patient", [patient.id], action="update", detail={"allergies": len(cleaned)}
    )
    return patient


async def ensure_patient(
    session: AsyncSession, cipher: FieldCipher, data: PatientData, *, actor: Actor
) -> tuple[Patient, bool]:
    """Create the archive on first treatment (a patient the HIS has not sent yet), or update
    it. A new archive belongs to the actor's department unless one is named; an existing
    one may be updated only by someone who may see it, and never its identity (name, ID
    number, phone: IDENTITY_MISMATCH; those come from the HIS or `correct_patient_identity`).
    Returns the patient and whether it was created."""
    require_treatment_staff(actor)
    existing = (
        await session.execute(sa.select(Patient).where(Patient.mrn == data.mrn))
    ).scalar_one_or_none()
    if (
        existing is not None
        and not actor.has_role("system")
        and not can_see_patient(actor, existing)
    ):
        raise forbidden(
            "该病历号属于您无权查看的患者 / this record number belongs to a patient you may not see"
        )
    if existing is None and data.department_code is None and actor.department_id is not None:
        data.department_code = (
            await session.execute(
                sa.select(Department.code).where(Department.id == actor.department_id)
            )
        ).scalar_one_or_none()
    patient, created = await upsert_patient(session, cipher, data, actor=actor)
    await log_patient_access(session, actor, "patient", [patient.id], action="register")
    return patient, created
