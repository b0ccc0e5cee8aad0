"""FHIR R4 JSON export: Patient, Appointment, Slot, Procedure, Consent and Task.

Resources are built and validated with `fhir.resources` (its `R4B` package: FHIR 4.3,
wire-compatible with R4 for these six resources; the package's default is R5). Routes:

    GET /fhir/Patient/{id}                      one Patient
    GET /fhir/$export?patient=ID                a Bundle of everything about one patient
    GET /fhir/$export?from=2025-03-01&to=...    a Bundle of what happened in a date range
                     [&_type=Appointment,Slot]  limited to some resource types

Bearer token as for /graphql. Only patients the caller may see are exported, identifiers
stay masked, and every export is written to the access log (action "export").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.task import Task as FhirTask
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.audit import record_access
from api.auth import Actor, authenticate
from api.crypto import FieldCipher
from api.domain.patients import (
    access_patient,
    masked_id_number,
    masked_phone,
    visible_patients_clause,
)
from api.errors import DomainError, ErrorCode, invalid
from api.models.patients import Patient
from api.services import Services

FHIR_JSON = "application/fhir+json"
MRN_SYSTEM = "urn:bedside:mrn"
ID_CARD_SYSTEM = "urn:oid:2.16.156.10011.1.1"  # 居民身份证号 (WS 364 identifier OID)
ITEM_SYSTEM = "urn:bedside:treatment-item"
MAX_RANGE_DAYS = 92
GENDER = {"M": "male", "F": "female", "O": "other", "U": "unknown"}


def reference(kind: str, ident: int | None, display: str | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"reference": f"{kind}/{ident}"}
    if display:
        ref["display"] = display
    return ref


def instant(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat() if moment else None


# --- resources ---------------------------------------------------------------------------


def patient_resource(patient: Patient, cipher: FieldCipher) -> FhirPatient:
    identifiers: list[dict[str, Any]] = [
        {
            "use": "usual",
            "type": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                ]
            },
            "system": MRN_SYSTEM,
            "value": patient.mrn,
        }
    ]
    masked_id = masked_id_number(cipher, patient)
    if masked_id:
        identifiers.append({"use": "official", "system": ID_CARD_SYSTEM, "value": masked_id})
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(patient.id),
        "identifier": identifiers,
        "name": [{"use": "official", "text": patient.name}],
        "gender": GENDER.get(patient.gender, "unknown"),
        "meta": {"lastUpdated": instant(patient.updated_at)},
    }
    if patient.birth_date:
        body["birthDate"] = patient.birth_date.isoformat()
    phone = masked_phone(cipher, patient)
    if phone:
        body["telecom"] = [{"system": "phone", "value": phone, "use": "mobile"}]
    if patient.department_id:
        body["managingOrganization"] = reference("Organization", patient.department_id)
    return FhirPatient.model_validate(body)


TASK_STATUS = {
    "pending": "in-progress",
    "approved": "completed",
    "rejected": "rejected",
    "returned": "cancelled",
    "cancelled": "cancelled",
    "transferred": "cancelled",
}


def task_resource(task: Any, instance: Any) -> FhirTask:
    """An approval task (审批任务) as a FHIR Task: who must decide what, by when, and how."""
    patient_id = (instance.data or {}).get("patient_id")
    body: dict[str, Any] = {
        "resourceType": "Task",
        "id": str(task.id),
        "status": TASK_STATUS.get(task.status, "in-progress"),
        "intent": "order",
        "code": {
            "coding": [{"system": "urn:bedside:approval-process", "code": instance.kind}],
            "text": instance.kind,
        },
        "description": f"审批步骤 / approval step {task.step_id}",
        "focus": reference("Basic", instance.id, f"approval {instance.id}"),
        "authoredOn": instant(task.created_at),
        "owner": reference("Practitioner", task.assignee_id),
        "requester": reference("Practitioner", instance.applicant_id),
        "businessStatus": {"text": f"{instance.status}"},
    }
    if patient_id is not None:
        body["for"] = reference("Patient", int(patient_id))
    if task.decided_at:
        body["lastModified"] = instant(task.decided_at)
    if task.due_at:
        body["restriction"] = {"period": {"end": instant(task.due_at)}}
    if task.comment:
        body["note"] = [{"text": task.comment}]
    return FhirTask.model_validate(body)


# --- export ------------------------------------------------------------------------------


@dataclass
class ExportQuery:
    """One patient, or a date range (local days, inclusive), or both."""

    patient_ids: list[int] | None  # None: every patient the actor may see
    start: datetime | None = None
    end: datetime | None = None
    types: set[str] = field(default_factory=set)

    def in_range(self, column: Any) -> sa.ColumnElement[bool]:
        clauses = []
        if self.start is not None:
            clauses.append(column >= self.start)
        if self.end is not None:
            clauses.append(column < self.end)
        return sa.and_(sa.true(), *clauses)


# A collector adds the resources of one type to the export; the patient ids it touches
# are collected so their Patient resources come along.
Collector = Callable[[AsyncSession, Actor, ExportQuery, set[int]], Awaitable[list[Resource]]]
COLLECTORS: dict[str, Collector] = {}


def collector(resource_type: str) -> Callable[[Collector], Collector]:
    def register(function: Collector) -> Collector:
        COLLECTORS[resource_type] = function
        return function

    return register


def patient_filter(column: Any, query: ExportQuery) -> sa.ColumnElement[bool]:
    if query.patient_ids is None:
        return sa.true()
    return column.in_(query.patient_ids)


async def visible_patient_ids(session: AsyncSession, actor: Actor, ids: set[int]) -> set[int]:
    if not ids:
        return set()
    rows = await session.execute(
        sa.select(Patient.id).where(Patient.id.in_(ids), visible_patients_clause(actor))
    )
    return set(rows.scalars())


@collector("Task")
async def collect_tasks(
    session: AsyncSession, actor: Actor, query: ExportQuery, patients: set[int]
) -> list[Resource]:
    try:
        from api.domain.approvals.access import can_see_instance
        from api.models.approvals import ApprovalInstance, ApprovalTask
    except ImportError:  # the approvals area is not installed
        return []
    stmt = (
        sa.select(ApprovalTask, ApprovalInstance)
        .join(ApprovalInstance, ApprovalInstance.id == ApprovalTask.instance_id)
        .where(query.in_range(ApprovalTask.created_at))
        .order_by(ApprovalTask.id)
    )
    out: list[Resource] = []
    seen_patients: dict[int, bool] = {}
    for task, instance in (await session.execute(stmt)).all():
        patient_id = (instance.data or {}).get("patient_id")
        if patient_id is None:
            continue  # approvals about no patient (privilege grants) are not patient data
        patient_id = int(patient_id)
        if query.patient_ids is not None and patient_id not in query.patient_ids:
            continue
        if patient_id not in seen_patients:
            seen_patients[patient_id] = bool(
                await visible_patient_ids(session, actor, {patient_id})
            )
        if not seen_patients[patient_id] or not await can_see_instance(session, actor, instance):
            continue
        patients.add(patient_id)
        out.append(task_resource(task, instance))
    return out


def _load_treatment_collectors() -> None:
    try:
        import integrations.fhir_treatments  # noqa: F401  (registers its collectors)
    except ImportError:  # the treatments area is not installed
        pass


async def export_bundle(
    session: AsyncSession, actor: Actor, cipher: FieldCipher, query: ExportQuery
) -> Bundle:
    _load_treatment_collectors()
    wanted = query.types or {"Patient", *COLLECTORS}
    unknown = wanted - {"Patient", *COLLECTORS}
    if unknown:
        raise invalid(
            "_type", f"不支持的资源类型 / unsupported resource type: {', '.join(sorted(unknown))}"
        )
    patients: set[int] = set(query.patient_ids or [])
    resources: list[Resource] = []
    for resource_type, collect in COLLECTORS.items():
        if resource_type in wanted:
            resources.extend(await collect(session, actor, query, patients))
    patient_resources: list[Resource] = []
    if "Patient" in wanted and patients:
        rows = await session.execute(
            sa.select(Patient)
            .where(Patient.id.in_(patients), visible_patients_clause(actor))
            .order_by(Patient.id)
        )
        patient_resources = [patient_resource(p, cipher) for p in rows.scalars()]
    everything = patient_resources + resources
    await record_access(
        session,
        actor,
        "fhir",
        action="export",
        detail={
            "patient_ids": sorted(patients),
            "from": instant(query.start),
            "to": instant(query.end),
            "types": sorted(wanted),
            "count": len(everything),
        },
    )
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "timestamp": datetime.now(UTC).isoformat(),
            "total": len(everything),
            "entry": [
                {"fullUrl": f"urn:bedside:{r.get_resource_type()}/{r.id}", "resource": r}
                for r in everything
            ],
        }
    )


# --- HTTP --------------------------------------------------------------------------------


def outcome(status: int, code: str, message: str) -> Response:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": message}],
    }
    return JSONResponse(body, status_code=status, media_type=FHIR_JSON)


def fhir_json(resource: Resource) -> Response:
    return Response(resource.model_dump_json(exclude_none=True), media_type=FHIR_JSON)


async def request_actor(services: Services, request: Request) -> Actor:
    actor, refused = await authenticate(services, request)
    if refused is not None:
        raise refused
    if actor is None:
        raise DomainError(ErrorCode.UNAUTHENTICATED, "请先登录 / sign in first")
    return actor


ERROR_STATUS = {
    ErrorCode.UNAUTHENTICATED: (401, "login"),
    ErrorCode.FORBIDDEN: (403, "forbidden"),
    ErrorCode.NOT_FOUND: (404, "not-found"),
    ErrorCode.VALIDATION: (400, "invalid"),
}


def error_response(exc: DomainError) -> Response:
    status, code = ERROR_STATUS.get(exc.code, (400, "processing"))  # type: ignore[call-overload]
    return outcome(status, code, exc.message + (f" ({exc.field})" if exc.field else ""))


def parse_day(value: str | None, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise invalid(name, f"日期格式应为 YYYY-MM-DD / {name} must be YYYY-MM-DD") from None


def export_query(request: Request, tz: Any) -> ExportQuery:
    params = request.query_params
    patient_ids = None
    if params.get("patient"):
        try:
            patient_ids = [int(params["patient"].removeprefix("Patient/"))]
        except ValueError:
            raise invalid("patient", "患者编号无效 / patient must be an id") from None
    first, last = parse_day(params.get("from"), "from"), parse_day(params.get("to"), "to")
    if patient_ids is None and (first is None or last is None):
        raise invalid("from", "请指定患者或日期范围 / give a patient or a from/to date range")
    if first and last and (last < first or (last - first).days > MAX_RANGE_DAYS):
        raise invalid(
            "to", f"日期范围须在 {MAX_RANGE_DAYS} 天内 / the range must be 0-{MAX_RANGE_DAYS} days"
        )
    types = {t.strip() for t in params.get("_type", "").split(",") if t.strip()}
    start = datetime.combine(first, time(0), tzinfo=tz).astimezone(UTC) if first else None
    end = (
        (datetime.combine(last, time(0), tzinfo=tz) + timedelta(days=1)).astimezone(UTC)
        if last
        else None
    )
    return ExportQuery(patient_ids=patient_ids, start=start, end=end, types=types)


def fhir_routes(services: Services) -> list[Route]:
    async def read_patient(request: Request) -> Response:
        try:
            actor = await request_actor(services, request)
            try:
                patient_id = int(request.path_params["patient_id"])
            except ValueError:
                raise invalid("id", "患者编号无效 / patient id must be a number") from None
            async with services.db.transaction() as session:
                patient = await access_patient(session, actor, patient_id)
                resource = patient_resource(patient, services.cipher)
                await record_access(
                    session,
                    actor,
                    "fhir.Patient",
                    action="export",
                    detail={"patient_ids": [patient_id]},
                )
        except DomainError as exc:
            return error_response(exc)
        return fhir_json(resource)

    async def export(request: Request) -> Response:
        try:
            actor = await request_actor(services, request)
            query = export_query(request, services.settings.tz)
            async with services.db.transaction() as session:
                if query.patient_ids:
                    await access_patient(session, actor, query.patient_ids[0])
                bundle = await export_bundle(session, actor, services.cipher, query)
        except DomainError as exc:
            return error_response(exc)
        return fhir_json(bundle)

    return [
        Route("/fhir/Patient/{patient_id}", read_patient, methods=["GET"]),
        Route("/fhir/$export", export, methods=["GET"]),
    ]
