"""The FHIR routes (see `integrations/fhir.py` for what they serve): the synchronous
export and Patient read, the metadata, and the Bulk Data routes of `fhir_bulk`.

Importing this module registers the treatments area's collectors (Appointment, Slot,
Procedure, Consent …) with `integrations.fhir`, so every process that serves FHIR has them.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from api.audit import record_access
from api.domain.patients import access_patient
from api.errors import DomainError, invalid
from api.services import Services
from integrations.fhir import (
    OPERATION,
    capability_statement,
    error_response,
    export_bundle,
    export_operation,
    export_query,
    fhir_json,
    mrn_system,
    patient_resource,
    request_actor,
)
from integrations.fhir_bulk import routes as bulk_routes

try:
    import integrations.fhir_treatments  # noqa: F401  (registers its collectors)
except ImportError:  # the treatments area is not installed
    pass


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
                resource = patient_resource(
                    patient, services.cipher, mrn_system=mrn_system(services.settings)
                )
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
                bundle = await export_bundle(
                    session, actor, services.cipher, query, services.settings
                )
        except DomainError as exc:
            return error_response(exc)
        return fhir_json(bundle)

    async def metadata(request: Request) -> Response:
        return fhir_json(capability_statement(services.settings))

    async def operation_definition(request: Request) -> Response:
        return fhir_json(export_operation(services.settings))

    return [
        Route("/fhir/metadata", metadata, methods=["GET"]),
        *bulk_routes(services),  # $export (Bulk Data), before Patient/{id}
        Route("/fhir/Patient/{patient_id}", read_patient, methods=["GET"]),
        Route(f"/fhir/${OPERATION}", export, methods=["GET"]),
        Route(f"/fhir/OperationDefinition/{OPERATION}", operation_definition, methods=["GET"]),
    ]
