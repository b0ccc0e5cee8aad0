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
        return list(
            (
                await session.execute(sa.select(AccessLog).where(AccessLog.action == "export"))
            ).scalars()
        )


async def test_patient_read_is_valid_fhir_masked_and_logged(
    http: httpx.AsyncClient, gql: GraphQLClient, demo: Services
) -> None:
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


async def test_patient_of_another_department_answers_like_no_patient(
    http: httpx.AsyncClient, gql: GraphQLClient, demo: Services
) -> None:
    pid = await patient_id(demo, "P0002")  # general surgery; pt.sun works in rehabilitation
    response = await http.get(f"/fhir/Patient/{pid}", headers=await token(gql, "pt.sun"))
    missing = await http.get("/fhir/Patient/99999999", headers=await token(gql, "pt.sun"))
    assert response.status_code == missing.status_code == 404  # ids cannot be probed
    assert response.json()["resourceType"] == "OperationOutcome"
    assert await export_rows(demo) == []


async def test_anonymous_and_bad_queries(
    http: httpx.AsyncClient, gql: GraphQLClient, demo: Services
) -> None:
    assert (await http.get("/fhir/Patient/1")).status_code == 401
    headers = await token(gql, "ma.zhao")
    response = await http.get("/fhir/$export", headers=headers)
    assert response.status_code == 400 and "from" in response.json()["issue"][0]["diagnostics"]
    response = await http.get("/fhir/$export?from=2025-01-01&to=2025-12-31", headers=headers)
    assert response.status_code == 400
    response = await http.get("/fhir/$export?patient=1&_type=Observation", headers=headers)
    assert response.status_code == 400


async def test_patient_export_bundle(
    http: httpx.AsyncClient, gql: GraphQLClient, demo: Services
) -> None:
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


async def test_treatment_history_exports_as_valid_fhir(
    http: httpx.AsyncClient, gql: GraphQLClient, demo: Services
) -> None:
    from tests.treatments.helpers import ids, local_today
    from tests.treatments.test_flow import _complete

    known = await ids(demo)
    sun = await gql.as_user("pt.sun")
    walk_in = (
        await sun.data(
            "mutation($o: ID!) { registerWalkIn(orderId: $o) { id } }",
            {"o": str(known["order:zhou"])},
        )
    )["registerWalkIn"]
    record = (
        await sun.data(
            "mutation($a: ID!) { startTreatment(appointmentId: $a) { id } }", {"a": walk_in["id"]}
        )
    )["startTreatment"]
    await _complete(demo, sun, record["id"])
    zhou = await gql.as_user("patient.zhou")
    slots = (
        await zhou.data(
            'query($f: Date!, $t: Date!) { availableSlots(itemCode: "PHYSIO", from: $f, to: $t) { id } }',
            {"f": local_today().isoformat(), "t": local_today().isoformat()},
        )
    )["availableSlots"]
    pid = known["patient:P0001"]

    response = await http.get(f"/fhir/$export?patient={pid}", headers=await token(gql, "pt.sun"))
    assert response.status_code == 200, response.text
    bundle = Bundle.model_validate_json(response.text)
    kinds: dict[str, list[Any]] = {}
    for entry in bundle.entry:
        kinds.setdefault(entry.resource.get_resource_type(), []).append(entry.resource)
    assert {"Patient", "Appointment", "Procedure", "Consent"} <= set(kinds)
    [appointment] = [a for a in kinds["Appointment"] if a.id == walk_in["id"]]
    assert appointment.status == "fulfilled"
    assert {p.actor.reference for p in appointment.participant} >= {f"Patient/{pid}"}
    [procedure] = [p for p in kinds["Procedure"] if p.id == record["id"]]
    assert procedure.status == "completed" and procedure.code.coding[0].code == "PHYSIO"
    assert procedure.subject.reference == f"Patient/{pid}"
    assert kinds["Consent"][0].patient.reference == f"Patient/{pid}"
    assert bundle.total == len(bundle.entry)

    # A day's export as the department sees it: the same appointment, and the day's slots.
    today = local_today().isoformat()
    response = await http.get(
        f"/fhir/$export?from={today}&to={today}&_type=Appointment,Slot,Patient",
        headers=await token(gql, "pt.sun"),
    )
    assert response.status_code == 200, response.text
    day = Bundle.model_validate_json(response.text)
    types = {e.resource.get_resource_type() for e in day.entry}
    assert "Appointment" in types and "Patient" in types and "Procedure" not in types
    assert len([e for e in day.entry if e.resource.get_resource_type() == "Slot"]) >= len(slots)
    # General surgery's patients are not in rehabilitation's export.
    exported_patients = {
        e.resource.id for e in day.entry if e.resource.get_resource_type() == "Patient"
    }
    assert str(known["patient:P0002"]) not in exported_patients
    rows = await export_rows(demo)
    assert [r.detail["types"] for r in rows][-1] == ["Appointment", "Patient", "Slot"]


async def test_approval_tasks_about_a_patient_export_as_fhir_tasks(
    http: httpx.AsyncClient, gql: GraphQLClient, demo: Services
) -> None:
    from fhir.resources.R4B.task import Task

    from api.domain import approvals
    from tests.approvals.helpers import REVIEW_V1, start

    pid = await patient_id(demo, "P0002")
    async with demo.db.transaction() as session:
        await approvals.publish_definition(session, REVIEW_V1)
        instance = await start(session, {"grade": 2, "emergency": False, "patient_id": pid})
    response = await http.get(
        f"/fhir/$export?patient={pid}&_type=Task,Patient", headers=await token(gql, "chief.wang")
    )
    assert response.status_code == 200, response.text
    bundle = Bundle.model_validate_json(response.text)
    tasks = [e.resource for e in bundle.entry if isinstance(e.resource, Task)]
    assert len(tasks) == 1
    assert tasks[0].for_fhir.reference == f"Patient/{pid}" and tasks[0].status == "in-progress"
    assert tasks[0].focus.reference == f"Basic/{instance.id}"
