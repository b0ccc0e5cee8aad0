"""Patients on the PAD: the department's archive, and corrections made at the bedside.

`updatePatient` edits bedside-editable fields (gender, birth date, allergies) through
`api.domain.patients.update_patient_details`, merged field by field (`sync.merge`):
allergies merge as a set, so no allergy recorded on one PAD is lost to another's edit.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.auth import Actor
from api.crypto import mask_name
from api.domain import patients as patient_domain
from api.domain.people import department_head
from api.errors import invalid, not_found
from api.models.patients import Patient
from api.services import Services
from sync import conflicts
from sync.merge import plan_merge
from sync.registry import Effect, MutationContext, Outcome, SyncEntity, entity, mutator, upgrade

# JSON names on the wire -> model attributes.
FIELDS = {"gender": "gender", "birthDate": "birth_date", "allergies": "allergies"}
STRATEGIES: dict[str, Any] = {"allergies": "set"}


def patient_scope(actor: Actor, now: datetime) -> sa.Select[Any]:
    return sa.select(Patient.id).where(patient_domain.visible_patients_clause(actor))


def serialize_patient(row: Patient, services: Services) -> dict[str, Any]:
    return {
        "id": row.id,
        "mrn": row.mrn,
        "name": row.name,
        "maskedName": mask_name(row.name),
        "gender": row.gender,
        "birthDate": row.birth_date.isoformat() if row.birth_date else None,
        "departmentId": row.department_id,
        "allergies": list(row.allergies or []),
        "phone": patient_domain.masked_phone(services.cipher, row),
        "updatedAt": row.updated_at.isoformat(),
    }


entity(SyncEntity(name="patient", model=Patient, scope=patient_scope, serialize=serialize_patient))


def wire_values(row: Patient) -> dict[str, Any]:
    return {
        "gender": row.gender,
        "birthDate": row.birth_date.isoformat() if row.birth_date else None,
        "allergies": list(row.allergies or []),
    }


class PatientEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gender: str | None = None
    birthDate: date | None = None  # noqa: N815 - wire name
    allergies: list[str] | None = Field(default=None, max_length=patient_domain.MAX_ALLERGIES)


class UpdatePatientArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patientId: int  # noqa: N815
    base: dict[str, Any] = Field(default_factory=dict)  # the values the device saw
    changes: PatientEdit


@mutator("updatePatient", UpdatePatientArgs)
async def update_patient(ctx: MutationContext, args: UpdatePatientArgs) -> Outcome:
    patient = await ctx.session.get(Patient, args.patientId, with_for_update=True)
    if patient is None:
        raise not_found("患者", "patient")
    changes = args.changes.model_dump(mode="json", exclude_unset=True)
    before = wire_values(patient)
    plan = plan_merge(before, args.base, changes, STRATEGIES)
    if plan.values:
        await patient_domain.update_patient_details(
            ctx.session, patient, {FIELDS[k]: v for k, v in plan.values.items()}, actor=ctx.actor
        )
    elif not patient_domain.can_see_patient(ctx.actor, patient):
        # Nothing to write, but a refused user must not learn the record's state either.
        await patient_domain.update_patient_details(ctx.session, patient, {}, actor=ctx.actor)
    await conflicts.record(ctx, "patient", patient.id, plan.conflicts)
    outcome = Outcome(
        status=plan.status,
        entity="patient",
        entity_id=patient.id,
        conflicts=[c.as_dict() for c in plan.conflicts],
    )
    outcome.server = serialize_patient(patient, ctx.services)
    added = [a for a in plan.values.get("allergies", []) if a not in before["allergies"]]
    if added and patient.department_id is not None:
        memo_key = ("department_head", patient.department_id)
        if memo_key not in ctx.memo:
            head = await department_head(ctx.session, patient.department_id)
            ctx.memo[memo_key] = head.id if head is not None else None
        head_id = ctx.memo[memo_key]
        if head_id is not None:
            outcome.effects.append(
                Effect(
                    recipient_id=head_id,
                    kind="allergy_recorded",
                    title="新增过敏记录 / new allergy recorded",
                    body=f"患者 {mask_name(patient.name)} 新增过敏：{'、'.join(added)} / new allergy",
                    key=f"allergy:{patient.id}:{'|'.join(sorted(added))}",
                    subject_type="patient",
                    subject_id=patient.id,
                    critical=True,
                )
            )
    return outcome


@upgrade(1, "updateAllergies")
def allergies_v1(args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Schema 1 sent the whole allergy list. Read as additions (never drop an allergy
    an old client did not know about)."""
    return "updatePatient", {
        "patientId": args.get("patientId"),
        "base": {"allergies": []},
        "changes": {"allergies": args.get("allergies")},
    }


@conflicts.writer("patient")
async def write_patient_field(
    session: Any, services: Services, actor: Actor, patient_id: int, field: str, value: Any
) -> None:
    patient = await session.get(Patient, patient_id, with_for_update=True)
    if patient is None:
        raise not_found("患者", "patient")
    if field not in FIELDS:
        raise not_found("字段", "field")
    try:
        edit = PatientEdit.model_validate({field: value}).model_dump(
            mode="json", exclude_unset=True
        )
    except ValidationError:
        raise invalid("value", f"取值无效 / invalid value for {field}") from None
    await patient_domain.update_patient_details(
        session, patient, {FIELDS[field]: edit[field]}, actor=actor
    )
