"""FHIR R4 export over HTTP: parsed back with fhir.resources, access-checked, access-logged."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.patient import Patient as FhirPatient

from api.models.audit import AccessLog
from api.models.patients import Patient
from api.services import Services
from tests.conftest import GraphQLClient


async def token(gql: GraphQLClient, username: str) -> dict[str, str]:
    client = await gql.as_user(username)
    return {"Authorization": f"Bearer {client.token}"}


async def patient_id(services: Services, mrn: str) -> int:
    async with services.db.session() as session:
        return (await session.execute(sa.select(Patient.id).where(Patient.mrn == mrn))).scalar_one()


async def export_rows(services: Services) -> list[AccessLog]:
    async with services.db.session() as session:
        return list((await session.execute(sa.select(AccessLog).where(AccessLog.action == "export"))).scalars())


async def test_patient_read_is_valid_fhir_masked_and_logged(http: httpx.AsyncClient, gql: GraphQLClient, demo: Services) -> None:
    pid = await patient_id(demo, "P0001")
    response = await http.get(f"/fhir/Patient/{pid}", headers=await token(gql, "pt.sun"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    resource = FhirPatient.model_validate_json(response.text)
    assert resource.name[0].text == "周建国"
    assert resource.gender == "male" and str(resource.birthDate) == "1962-03-14"
    values = {i.system: i.value for i in resource.identifier}
    assert values["urn:bedside:mrn"] == "P0001"
    assert "340202196203141234" not in response.text and "13805531234" not in response.text
    rows = await export_rows(demo)
    assert [(r.resource, r.detail["patient_ids"]) for r in rows] == [("fhir.Patient", [pid])]


async def test_patient_of_another_department_is_forbidden(http: httpx.AsyncClient, gql: GraphQLClient, demo: Services) -> None:
    pid = await patient_id(demo, "P0002")  # general surgery; pt.sun works in rehabilitation
    response = await http.get(f"/fhir/Patient/{pid}", headers=await token(gql, "pt.sun"))
    assert response.status_code == 403
    assert response.json()["resourceType"] == "OperationOutcome"
    assert await export_rows(demo) == []


async def test_anonymous_and_bad_queries(http: httpx.AsyncClient, gql: GraphQLClient, demo: Services) -> None:
    assert (await http.get("/fhir/Patient/1")).status_code == 401
    headers = await token(gql, "ma.zhao")
    response = await http.get("/fhir/$export", headers=headers)
    assert response.status_code == 400 and "from" in response.json()["issue"][0]["diagnostics"]
    response = await http.get("/fhir/$export?from=2025-01-01&to=2025-12-31", headers=headers)
    assert response.status_code == 400
    response = await http.get("/fhir/$export?patient=1&_type=Observation", headers=headers)
    assert response.status_code == 400


async def test_patient_export_bundle(http: httpx.AsyncClient, gql: GraphQLClient, demo: Services) -> None:
    pid = await patient_id(demo, "P0001")
    response = await http.get(f"/fhir/$export?patient={pid}", headers=await token(gql, "ma.zhao"))
    assert response.status_code == 200, response.text
    bundle = Bundle.model_validate_json(response.text)
    kinds: dict[str, list[Any]] = {}
    for entry in bundle.entry:
        kinds.setdefault(entry.resource.get_resource_type(), []).append(entry.resource)
    assert [p.id for p in kinds["Patient"]] == [str(pid)]
    rows = await export_rows(demo)
    assert len(rows) == 1 and rows[0].resource == "fhir" and rows[0].detail["patient_ids"] == [pid]
