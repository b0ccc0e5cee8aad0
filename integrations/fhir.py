"""FHIR R4 JSON export: Patient, Appointment, Slot, Procedure, Consent and Task, with what
they refer to (Practitioner, Organization, Location, ServiceRequest, Schedule, ...).

Resources are built and validated with `fhir.resources` (its `R4B` package: FHIR 4.3,
wire-compatible with R4 for these resources; the package's default is R5). Routes:

    GET /fhir/metadata                                the CapabilityStatement (no token)
    GET /fhir/Patient/{id}                            one Patient
    GET /fhir/$bedside-export?patient=ID              a collection Bundle about one patient
    GET /fhir/$bedside-export?from=2025-03-01&to=...  ... of what happened in a date range
                     [&_type=Appointment,Slot]        collecting only some resource types
    GET /fhir/OperationDefinition/bedside-export      what the operation takes and returns

The routes are assembled in `integrations/fhir_http.py`, which also registers the
treatments area's collectors (`integrations/fhir_treatments.py`); this module holds the
resources, the collector and loader registries and the Bundle.

`$bedside-export` is synchronous and ours. `$export` is the asynchronous FHIR Bulk Data
operation (integrations/fhir_bulk.py): `Prefer: respond-async`, 202 and a status URL,
then NDJSON files; never a Bundle.

Bundles follow the R4 rules (bundle.html): a `collection` has no `total` (bdl-1); every
entry's fullUrl is a `urn:uuid:` (bundle.html#references: "fullUrl ... a urn:uuid"), and
every reference between entries is that absolute `urn:uuid`, so a client resolves them
inside the Bundle without a server; a referenced resource is included, or the reference
is dropped. Identifiers and telecoms carry real values or are left out: a masked value is
not an identifier. Bearer token as for /graphql; only patients the caller may see are
exported; every export is written to the access log (action "export").
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.location import Location as FhirLocation
from fhir.resources.R4B.operationdefinition import OperationDefinition
from fhir.resources.R4B.organization import Organization as FhirOrganization
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.practitioner import Practitioner as FhirPractitioner
from fhir.resources.R4B.resource import Resource
from fhir.resources.R4B.task import Task as FhirTask
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.audit import record_access
from api.auth import Actor, authenticate
from api.crypto import FieldCipher
from api.domain.patients import name_parts, visible_patients_clause
from api.errors import DomainError, ErrorCode, invalid
from api.models.patients import Patient
from api.models.people import Department, User
from api.services import Services
from api.settings import Settings

FHIR_JSON = "application/fhir+json"
FHIR_VERSION = "4.0.1"
# 居民身份证号: urn:oid:2.16.156.10011.1.3 (…1.1 is 文档流水号, a document number). We do not
# export it: the archive keeps it for binding and shows it masked, and a masked value is
# not an identifier.
ID_CARD_SYSTEM = "urn:oid:2.16.156.10011.1.3"
ITEM_SYSTEM = "urn:bedside:treatment-item"
OPERATION = "bedside-export"


def mrn_system(settings: Settings) -> str:
    """The hospital's own system for its record numbers: configured OID/URL, else ours."""
    return settings.fhir_mrn_system or f"{settings.public_url.rstrip('/')}/fhir/sid/mrn"


def human_name(name: str, use: str = "official") -> dict[str, Any]:
    family, given = name_parts(name)
    out: dict[str, Any] = {"use": use, "text": name}
    if family:
        out["family"] = family
    if given:
        out["given"] = [given]
    return out


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


def patient_resource(patient: Patient, cipher: FieldCipher, *, mrn_system: str) -> FhirPatient:
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(patient.id),
        "identifier": [
            {
                "use": "usual",
                "type": {
                    "coding": [
                        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                    ]
                },
                "system": mrn_system,
                "value": patient.mrn,
            }
        ],
        "name": [human_name(patient.name)],
        "gender": GENDER.get(patient.gender, "unknown"),
        "meta": {"lastUpdated": instant(patient.updated_at)},
    }
    if patient.birth_date:
        body["birthDate"] = patient.birth_date.isoformat()
    if patient.department_id:
        body["managingOrganization"] = reference("Organization", patient.department_id)
    return FhirPatient.model_validate(body)


def practitioner_resource(user: User) -> FhirPractitioner:
    return FhirPractitioner.model_validate(
        {
            "resourceType": "Practitioner",
            "id": str(user.id),
            "active": bool(getattr(user, "is_active", True)),
            "name": [human_name(user.display_name or user.username)],
        }
    )


def organization_resource(department: Department) -> FhirOrganization:
    return FhirOrganization.model_validate(
        {
            "resourceType": "Organization",
            "id": str(department.id),
            "active": True,
            "identifier": [{"system": "urn:bedside:department", "value": department.code}],
            "name": department.name,
            **({"alias": [department.name_en]} if department.name_en else {}),
        }
    )


def location_resource(department: Department) -> FhirLocation:
    """Where a department works (a Procedure's location)."""
    return FhirLocation.model_validate(
        {
            "resourceType": "Location",
            "id": str(department.id),
            "status": "active",
            "name": department.name,
            "mode": "kind",
            "managingOrganization": reference("Organization", department.id),
        }
    )


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
        # The approval instance itself has no FHIR resource of ours: named, not referenced.
        "identifier": [{"system": "urn:bedside:approval-instance", "value": str(instance.id)}],
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


# A loader builds the resources of one type that something in the export refers to.
Loader = Callable[[AsyncSession, Actor, set[int]], Awaitable[list[Resource]]]
LOADERS: dict[str, Loader] = {}


def loader(resource_type: str) -> Callable[[Loader], Loader]:
    def register(function: Loader) -> Loader:
        LOADERS[resource_type] = function
        return function

    return register


@loader("Practitioner")
async def load_practitioners(session: AsyncSession, actor: Actor, ids: set[int]) -> list[Resource]:
    rows = await session.execute(sa.select(User).where(User.id.in_(ids)).order_by(User.id))
    return [practitioner_resource(u) for u in rows.scalars()]


@loader("Organization")
async def load_organizations(session: AsyncSession, actor: Actor, ids: set[int]) -> list[Resource]:
    rows = await session.execute(
        sa.select(Department).where(Department.id.in_(ids)).order_by(Department.id)
    )
    return [organization_resource(d) for d in rows.scalars()]


@loader("Location")
async def load_locations(session: AsyncSession, actor: Actor, ids: set[int]) -> list[Resource]:
    rows = await session.execute(
        sa.select(Department).where(Department.id.in_(ids)).order_by(Department.id)
    )
    return [location_resource(d) for d in rows.scalars()]


def entry_url(namespace: uuid.UUID, kind: str, ident: str) -> str:
    """A stable urn:uuid per resource (the same resource, the same fullUrl, every export)."""
    return f"urn:uuid:{uuid.uuid5(namespace, f'{kind}/{ident}')}"


def references_in(node: Any, found: set[tuple[str, str]]) -> None:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and "/" in ref and not ref.startswith("urn:"):
            kind, _, ident = ref.partition("/")
            found.add((kind, ident))
        for value in node.values():
            references_in(value, found)
    elif isinstance(node, list):
        for value in node:
            references_in(value, found)


def rewrite_references(node: Any, urls: dict[tuple[str, str], str]) -> Any:
    """References to included resources become their urn:uuid; the others are dropped.

    None means "drop me": a Reference whose target is not in the Bundle, and an element
    that is nothing without that reference (a Consent provision's data item).
    """
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str) and "/" in ref and not ref.startswith("urn:"):
            kind, _, ident = ref.partition("/")
            url = urls.get((kind, ident))
            if url is None:
                return None
            return {**node, "reference": url}
        out: dict[str, Any] = {}
        for key, value in node.items():
            new = rewrite_references(value, urls)
            if new is None or new == [] or new == {}:
                if key == "reference":
                    return None  # the element exists for this reference
                continue
            out[key] = new
        return out
    if isinstance(node, list):
        return [n for n in (rewrite_references(v, urls) for v in node) if n not in (None, {}, [])]
    return node


async def with_referenced(
    session: AsyncSession,
    actor: Actor,
    cipher: FieldCipher,
    settings: Settings,
    resources: list[Resource],
) -> dict[tuple[str, str], dict[str, Any]]:
    """The resources as JSON, and what they refer to (that we have and may show)."""
    bodies: dict[tuple[str, str], dict[str, Any]] = {}
    for resource in resources:
        body = json.loads(resource.model_dump_json(exclude_none=True))
        bodies.setdefault((body["resourceType"], body["id"]), body)
    missing_types: dict[str, set[int]] = {}
    tried: set[tuple[str, str]] = set()
    while True:
        wanted: set[tuple[str, str]] = set()
        for body in bodies.values():
            references_in(body, wanted)
        wanted -= set(bodies) | tried
        if not wanted:
            break
        tried |= wanted
        missing_types.clear()
        for kind, ident in wanted:
            if ident.isdigit():
                missing_types.setdefault(kind, set()).add(int(ident))
        for kind, ids in sorted(missing_types.items()):
            if kind == "Patient":
                rows = await session.execute(
                    sa.select(Patient)
                    .where(Patient.id.in_(ids), visible_patients_clause(actor))
                    .order_by(Patient.id)
                )
                loaded: list[Resource] = [
                    patient_resource(p, cipher, mrn_system=mrn_system(settings))
                    for p in rows.scalars()
                ]
            elif kind in LOADERS:
                loaded = await LOADERS[kind](session, actor, ids)
            else:
                continue
            for resource in loaded:
                body = json.loads(resource.model_dump_json(exclude_none=True))
                bodies.setdefault((body["resourceType"], body["id"]), body)
    return bodies


async def assemble(
    session: AsyncSession,
    actor: Actor,
    cipher: FieldCipher,
    settings: Settings,
    resources: list[Resource],
) -> list[dict[str, Any]]:
    """The Bundle entries: the resources, what they refer to, references made absolute."""
    bodies = await with_referenced(session, actor, cipher, settings, resources)
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, settings.public_url.rstrip("/") + "/fhir")
    urls = {key: entry_url(namespace, *key) for key in bodies}
    return [
        {"fullUrl": urls[key], "resource": rewrite_references(body, urls)}
        for key, body in bodies.items()
    ]


async def collect(
    session: AsyncSession,
    actor: Actor,
    cipher: FieldCipher,
    query: ExportQuery,
    settings: Settings,
    *,
    every_visible_patient: bool = False,
) -> tuple[list[Resource], set[int], set[str]]:
    """(resources, the patients they are about, the types asked for) of an export.

    `every_visible_patient`: a system-level export (Bulk Data) includes every patient the
    actor may see, not only those the other resources are about.
    """
    wanted = query.types or {"Patient", *COLLECTORS}
    unknown = wanted - {"Patient", *COLLECTORS}
    if unknown:
        raise invalid(
            "_type", f"不支持的资源类型 / unsupported resource type: {', '.join(sorted(unknown))}"
        )
    patients: set[int] = set(query.patient_ids or [])
    resources: list[Resource] = []
    for resource_type, collect_type in COLLECTORS.items():
        if resource_type in wanted:
            resources.extend(await collect_type(session, actor, query, patients))
    patient_resources: list[Resource] = []
    if "Patient" in wanted and (patients or every_visible_patient):
        stmt = sa.select(Patient).where(visible_patients_clause(actor)).order_by(Patient.id)
        if not every_visible_patient:
            stmt = stmt.where(Patient.id.in_(patients))
        rows = list((await session.execute(stmt)).scalars())
        patients.update(p.id for p in rows if p.id is not None)
        patient_resources = [
            patient_resource(p, cipher, mrn_system=mrn_system(settings)) for p in rows
        ]
    return patient_resources + resources, patients, wanted


async def export_bundle(
    session: AsyncSession,
    actor: Actor,
    cipher: FieldCipher,
    query: ExportQuery,
    settings: Settings,
) -> Bundle:
    resources, patients, wanted = await collect(session, actor, cipher, query, settings)
    entries = await assemble(session, actor, cipher, settings, resources)
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
            "count": len(entries),
        },
    )
    # A collection: no `total` (bdl-1, "total only when a search or history").
    return Bundle.model_validate(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "timestamp": datetime.now(UTC).isoformat(),
            "entry": entries,
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


def base_url(settings: Settings) -> str:
    return f"{settings.public_url.rstrip('/')}/fhir"


def export_operation(settings: Settings) -> OperationDefinition:
    return OperationDefinition.model_validate(
        {
            "resourceType": "OperationDefinition",
            "id": OPERATION,
            "url": f"{base_url(settings)}/OperationDefinition/{OPERATION}",
            "name": "BedsideExport",
            "title": "床旁数据导出 / Bedside export",
            "status": "active",
            "kind": "operation",
            "code": OPERATION,
            "system": True,
            "type": False,
            "instance": False,
            "affectsState": False,
            "description": "A collection Bundle of one patient's data, or of a date range"
            " (at most 92 days), limited to the patients the caller may see.",
            "parameter": [
                {"name": "patient", "use": "in", "min": 0, "max": "1", "type": "string"},
                {"name": "from", "use": "in", "min": 0, "max": "1", "type": "date"},
                {"name": "to", "use": "in", "min": 0, "max": "1", "type": "date"},
                {"name": "_type", "use": "in", "min": 0, "max": "1", "type": "string"},
                {"name": "return", "use": "out", "min": 1, "max": "1", "type": "Bundle"},
            ],
        }
    )


def capability_statement(settings: Settings) -> CapabilityStatement:
    """What generic clients fetch first (R4 http.html#capabilities)."""
    base = base_url(settings)
    return CapabilityStatement.model_validate(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": "2025-03-01",
            "publisher": "Bedside",
            "kind": "instance",  # cpb-14: an instance has `implementation`
            "software": {"name": "Bedside"},
            "implementation": {"description": "Bedside FHIR R4 export", "url": base},
            "fhirVersion": FHIR_VERSION,
            "instantiates": ["http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"],
            "format": ["application/fhir+json", "json"],
            "rest": [
                {
                    "mode": "server",
                    "security": {
                        "cors": False,
                        "description": "Authorization: Bearer <token> from the GraphQL login",
                    },
                    "resource": [
                        {
                            "type": "Patient",
                            "interaction": [{"code": "read"}],
                        },
                        {
                            "type": "OperationDefinition",
                            "interaction": [{"code": "read"}],
                        },
                    ],
                    "operation": [
                        {
                            "name": OPERATION,
                            "definition": f"{base}/OperationDefinition/{OPERATION}",
                        },
                        {
                            # FHIR Bulk Data Access (async, NDJSON): system and Patient level
                            "name": "export",
                            "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                        },
                    ],
                }
            ],
        }
    )
