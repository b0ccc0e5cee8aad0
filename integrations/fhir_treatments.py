"""FHIR R4 resources of the treatment area: Appointment, Slot, Procedure (a bedside record)
and Consent (a signed consent form), registered as collectors of `integrations.fhir`; and
what they refer to (ServiceRequest for an order, Schedule, DocumentReference for a consent
text), registered as loaders."""

from __future__ import annotations

import base64
from typing import Any

import sqlalchemy as sa
from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.consent import Consent as FhirConsent
from fhir.resources.R4B.documentreference import DocumentReference as FhirDocumentReference
from fhir.resources.R4B.procedure import Procedure as FhirProcedure
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.schedule import Schedule as FhirSchedule
from fhir.resources.R4B.servicerequest import ServiceRequest as FhirServiceRequest
from fhir.resources.R4B.slot import Slot as FhirSlot
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor
from api.domain.patients import visible_patients_clause
from api.models.patients import Patient
from api.models.treatments import (
    Appointment,
    ConsentSignature,
    ConsentText,
    Schedule,
    Slot,
    TreatmentItem,
    TreatmentOrder,
    TreatmentRecord,
)
from integrations.fhir import (
    ITEM_SYSTEM,
    ExportQuery,
    collector,
    instant,
    loader,
    patient_filter,
    reference,
)

# LOINC 59284-0 as LOINC names it today (LOINC 2.80+, the display tx.fhir.org expands);
# the R4 consent-category value set page lists the older name "Patient Consent".
CONSENT_CATEGORY = {"system": "http://loinc.org", "code": "59284-0", "display": "Consent Document"}


def service(item: TreatmentItem | None) -> list[dict[str, Any]]:
    if item is None:
        return []
    return [
        {
            "coding": [{"system": ITEM_SYSTEM, "code": item.code, "display": item.name}],
            "text": item.name,
        }
    ]


def appointment_resource(appointment: Appointment, item: TreatmentItem | None) -> FhirAppointment:
    participants: list[dict[str, Any]] = [
        {
            "actor": reference("Patient", appointment.patient_id),
            "required": "required",
            "status": "accepted",
        }
    ]
    if appointment.therapist_id:
        participants.append(
            {
                "actor": reference("Practitioner", appointment.therapist_id),
                "required": "required",
                "status": "accepted",
            }
        )
    if appointment.room:
        participants.append(
            {
                "actor": {"display": appointment.room},
                "required": "information-only",
                "status": "accepted",
            }
        )
    body: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": str(appointment.id),
        "status": appointment.status,  # our statuses are FHIR's AppointmentStatus
        "serviceType": service(item),
        "start": instant(appointment.starts_at),
        "end": instant(appointment.ends_at),
        "minutesDuration": int((appointment.ends_at - appointment.starts_at).total_seconds() // 60),
        "created": appointment.created_at.date().isoformat(),
        "participant": participants,
        "meta": {
            "versionId": str(appointment.version),
            "lastUpdated": instant(appointment.updated_at),
        },
    }
    if appointment.slot_id:
        body["slot"] = [reference("Slot", appointment.slot_id)]
    if appointment.order_id:
        body["basedOn"] = [reference("ServiceRequest", appointment.order_id)]
    # app-4: "Cancelation reason is only used for appointments that have been cancelled, or no-show"
    if appointment.cancel_reason and appointment.status in ("cancelled", "noshow"):
        body["cancelationReason"] = {"text": appointment.cancel_reason}
    if appointment.receipt_no:
        body["identifier"] = [{"system": "urn:bedside:receipt", "value": appointment.receipt_no}]
    return FhirAppointment.model_validate(body)


def slot_resource(slot: Slot, item: TreatmentItem | None) -> FhirSlot:
    status = (
        "busy-unavailable" if slot.cancelled_at else ("busy" if slot.remaining <= 0 else "free")
    )
    return FhirSlot.model_validate(
        {
            "resourceType": "Slot",
            "id": str(slot.id),
            "schedule": reference("Schedule", slot.schedule_id),
            "status": status,
            "start": instant(slot.starts_at),
            "end": instant(slot.ends_at),
            "serviceType": service(item),
            "overbooked": False,
            "comment": f"余 {slot.remaining}/{slot.capacity} / {slot.remaining} of {slot.capacity} free"
            + (f" · {slot.room}" if slot.room else ""),
        }
    )


def procedure_resource(record: TreatmentRecord, item: TreatmentItem | None) -> FhirProcedure:
    body: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": str(record.id),
        "status": "completed" if record.archived_at else "in-progress",
        "subject": reference("Patient", record.patient_id),
        "basedOn": [reference("ServiceRequest", record.order_id)],
        "performedDateTime": instant(record.archived_at or record.created_at),
        "meta": {"versionId": str(record.version), "lastUpdated": instant(record.updated_at)},
    }
    if item is not None:
        body["code"] = service(item)[0]
    if record.therapist_id:
        body["performer"] = [{"actor": reference("Practitioner", record.therapist_id)}]
    if record.department_id:
        body["location"] = reference("Location", record.department_id)
    return FhirProcedure.model_validate(body)


def consent_resource(signature: ConsentSignature) -> FhirConsent:
    return FhirConsent.model_validate(
        {
            "resourceType": "Consent",
            "id": str(signature.id),
            "status": "active",
            "scope": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "treatment",
                    }
                ]
            },
            "category": [{"coding": [CONSENT_CATEGORY]}],
            "patient": reference("Patient", signature.patient_id),
            "dateTime": instant(signature.signed_at),
            "policyRule": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}
                ]
            },
            # The signature is bound to the exact text the patient saw: both hashes travel along.
            "identifier": [
                {"system": "urn:bedside:consent-binding-sha256", "value": signature.binding_sha256}
            ],
            "sourceReference": reference(
                "DocumentReference",
                signature.consent_text_id,
                f"consent text sha256 {signature.text_sha256}",
            ),
            "provision": {
                "type": "permit",
                "data": [
                    {"meaning": "related", "reference": reference("Procedure", signature.record_id)}
                ],
            },
        }
    )


def service_request_resource(
    order: TreatmentOrder, item: TreatmentItem | None
) -> FhirServiceRequest:
    """An order (医嘱): the item, how many sessions, and the HIS's placer order number."""
    status = (
        "revoked"
        if order.cancelled_at
        else ("completed" if order.used_sessions >= order.sessions else "active")
    )
    body: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": str(order.id),
        "status": status,
        "intent": "order",
        "subject": reference("Patient", order.patient_id),
        "authoredOn": instant(order.created_at),
        "occurrenceTiming": {"repeat": {"count": order.sessions}},
        "meta": {"lastUpdated": instant(order.updated_at)},
    }
    if item is not None:
        body["code"] = service(item)[0]
    if order.his_order_no:
        body["identifier"] = [
            {
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "PLAC"}
                    ]
                },
                "system": "urn:bedside:his-order",
                "value": order.his_order_no,
            }
        ]
    if order.ordering_doctor_id:
        body["requester"] = reference("Practitioner", order.ordering_doctor_id)
    elif order.ordering_doctor_name:
        body["requester"] = {"display": order.ordering_doctor_name}
    return FhirServiceRequest.model_validate(body)


def schedule_resource(schedule: Schedule, item: TreatmentItem | None) -> FhirSchedule:
    actors: list[dict[str, Any]] = []
    if schedule.therapist_id:
        actors.append(reference("Practitioner", schedule.therapist_id))
    if schedule.room or not actors:
        actors.append({"display": schedule.room or (item.name if item else "排班")})
    return FhirSchedule.model_validate(
        {
            "resourceType": "Schedule",
            "id": str(schedule.id),
            "active": schedule.is_active,
            "serviceType": service(item),
            "actor": actors,
            "planningHorizon": {
                "start": schedule.valid_from.isoformat(),
                **({"end": schedule.valid_to.isoformat()} if schedule.valid_to else {}),
            },
            "comment": f"{schedule.start_time}-{schedule.end_time}",
        }
    )


def document_resource(text: ConsentText) -> FhirDocumentReference:
    """The consent text a signature is bound to, the text itself as the attachment."""
    return FhirDocumentReference.model_validate(
        {
            "resourceType": "DocumentReference",
            "id": str(text.id),
            "status": "current",
            "type": {"coding": [CONSENT_CATEGORY]},
            "date": instant(text.created_at),
            "description": f"{text.title} v{text.version} sha256 {text.sha256}",
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain; charset=utf-8",
                        "language": "zh-CN",
                        "title": text.title,
                        "data": base64.b64encode(text.body.encode("utf-8")).decode("ascii"),
                    }
                }
            ],
        }
    )


@loader("ServiceRequest")
async def load_orders(session: AsyncSession, actor: Actor, ids: set[int]) -> list[Resource]:
    rows = await session.execute(
        sa.select(TreatmentOrder)
        .where(
            TreatmentOrder.id.in_(ids),
            TreatmentOrder.patient_id.in_(
                sa.select(Patient.id).where(visible_patients_clause(actor))
            ),
        )
        .order_by(TreatmentOrder.id)
    )
    known = await items(session)
    return [service_request_resource(o, known.get(o.item_id)) for o in rows.scalars()]


@loader("Schedule")
async def load_schedules(session: AsyncSession, actor: Actor, ids: set[int]) -> list[Resource]:
    rows = await session.execute(
        sa.select(Schedule).where(Schedule.id.in_(ids)).order_by(Schedule.id)
    )
    known = await items(session)
    return [schedule_resource(s, known.get(s.item_id)) for s in rows.scalars()]


@loader("Slot")
async def load_slots(session: AsyncSession, actor: Actor, ids: set[int]) -> list[Resource]:
    rows = await session.execute(sa.select(Slot).where(Slot.id.in_(ids)).order_by(Slot.id))
    known = await items(session)
    return [slot_resource(s, known.get(s.item_id)) for s in rows.scalars()]


@loader("Procedure")
async def load_procedures(session: AsyncSession, actor: Actor, ids: set[int]) -> list[Resource]:
    rows = await session.execute(
        sa.select(TreatmentRecord)
        .where(
            TreatmentRecord.id.in_(ids),
            TreatmentRecord.deleted_at.is_(None),
            TreatmentRecord.patient_id.in_(
                sa.select(Patient.id).where(visible_patients_clause(actor))
            ),
        )
        .order_by(TreatmentRecord.id)
    )
    known = await items(session)
    return [procedure_resource(r, known.get(r.item_id)) for r in rows.scalars()]


@loader("DocumentReference")
async def load_documents(session: AsyncSession, actor: Actor, ids: set[int]) -> list[Resource]:
    rows = await session.execute(
        sa.select(ConsentText).where(ConsentText.id.in_(ids)).order_by(ConsentText.id)
    )
    return [document_resource(t) for t in rows.scalars()]


async def items(session: AsyncSession) -> dict[int, TreatmentItem]:
    return {
        i.id: i
        for i in (await session.execute(sa.select(TreatmentItem))).scalars()
        if i.id is not None
    }


def visible(actor: Actor, patient_column: Any, query: ExportQuery) -> list[Any]:
    """Rows of patients the actor may see, limited to the query's patient if it names one."""
    return [
        patient_column.in_(sa.select(Patient.id).where(visible_patients_clause(actor))),
        patient_filter(patient_column, query),
    ]


@collector("Appointment")
async def collect_appointments(
    session: AsyncSession, actor: Actor, query: ExportQuery, patients: set[int]
) -> list[Resource]:
    stmt = sa.select(Appointment).where(
        Appointment.deleted_at.is_(None),
        query.in_range(Appointment.starts_at),
        *visible(actor, Appointment.patient_id, query),
    )
    known = await items(session)
    rows = list(
        (await session.execute(stmt.order_by(Appointment.starts_at, Appointment.id))).scalars()
    )
    patients.update(r.patient_id for r in rows)
    return [appointment_resource(r, known.get(r.item_id)) for r in rows]


@collector("Slot")
async def collect_slots(
    session: AsyncSession, actor: Actor, query: ExportQuery, patients: set[int]
) -> list[Resource]:
    """A patient's export: the slots of their appointments; a range export: every slot in it."""
    if query.patient_ids is not None:
        booked = sa.select(Appointment.slot_id).where(
            Appointment.deleted_at.is_(None),
            query.in_range(Appointment.starts_at),
            *visible(actor, Appointment.patient_id, query),
        )
        stmt = sa.select(Slot).where(Slot.id.in_(booked))
    else:
        stmt = sa.select(Slot).where(query.in_range(Slot.starts_at))
    known = await items(session)
    return [
        slot_resource(s, known.get(s.item_id))
        for s in (await session.execute(stmt.order_by(Slot.starts_at, Slot.id))).scalars()
    ]


@collector("Procedure")
async def collect_procedures(
    session: AsyncSession, actor: Actor, query: ExportQuery, patients: set[int]
) -> list[Resource]:
    stmt = sa.select(TreatmentRecord).where(
        TreatmentRecord.deleted_at.is_(None),
        query.in_range(TreatmentRecord.created_at),
        *visible(actor, TreatmentRecord.patient_id, query),
    )
    known = await items(session)
    rows = list((await session.execute(stmt.order_by(TreatmentRecord.id))).scalars())
    patients.update(r.patient_id for r in rows)
    return [procedure_resource(r, known.get(r.item_id)) for r in rows]


@collector("Consent")
async def collect_consents(
    session: AsyncSession, actor: Actor, query: ExportQuery, patients: set[int]
) -> list[Resource]:
    stmt = sa.select(ConsentSignature).where(
        ConsentSignature.deleted_at.is_(None),
        query.in_range(ConsentSignature.signed_at),
        *visible(actor, ConsentSignature.patient_id, query),
    )
    rows = list((await session.execute(stmt.order_by(ConsentSignature.id))).scalars())
    patients.update(r.patient_id for r in rows)
    return [consent_resource(r) for r in rows]
