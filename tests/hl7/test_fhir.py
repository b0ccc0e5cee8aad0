"""FHIR R4 over HTTP: parsed back with fhir.resources, checked against the R4 invariants
(tests/hl7/fhir_invariants.py, written from the spec text), access-checked, access-logged."""

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
from tests.hl7.fhir_invariants import check_bundle, check_capability_statement, check_elements


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
                await session.execute(
                    sa.select(AccessLog).where(AccessLog.action == "export").order_by(AccessLog.id)
                )
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
    check_elements(response.json())
    name = resource.name[0]
    assert name.text == "周建国" and name.family == "周" and name.given == ["建国"]
    assert resource.gender == "male" and str(resource.birthDate) == "1962-03-14"
    values = {i.system: i.value for i in resource.identifier}
    # The record number under the hospital's own system (BEDSIDE_FHIR_MRN_SYSTEM, else
    # derived from the public URL), not a made-up urn.
    assert values == {f"{demo.settings.public_url.rstrip('/')}/fhir/sid/mrn": "P0001"}
    # No masked ID card number or phone inside identifier/telecom: left out.
    assert resource.telecom is None
    assert "340202196203141234" not in response.text and "13805531234" not in response.text
    assert "*" not in response.text
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
    response = await http.get("/fhir/$bedside-export", headers=headers)
    assert response.status_code == 400 and "from" in response.json()["issue"][0]["diagnostics"]
    response = await http.get(
        "/fhir/$bedside-export?from=2025-01-01&to=2025-12-31", headers=headers
    )
    assert response.status_code == 400
    response = await http.get("/fhir/$bedside-export?patient=1&_type=Observation", headers=headers)
    assert response.status_code == 400


async def test_patient_export_bundle(
    http: httpx.AsyncClient, gql: GraphQLClient, demo: Services
) -> None:
    pid = await patient_id(demo, "P0001")
    response = await http.get(
        f"/fhir/$bedside-export?patient={pid}", headers=await token(gql, "ma.zhao")
    )
    assert response.status_code == 200, response.text
    bundle = Bundle.model_validate_json(response.text)
    kinds: dict[str, list[Any]] = {}
    for entry in bundle.entry:
        kinds.setdefault(entry.resource.get_resource_type(), []).append(entry.resource)
    assert [p.id for p in kinds["Patient"]] == [str(pid)]
    assert bundle.total is None and bundle.type == "collection"  # bdl-1
    check_bundle(response.json())
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

    response = await http.get(
        f"/fhir/$bedside-export?patient={pid}", headers=await token(gql, "pt.sun")
    )
    assert response.status_code == 200, response.text
    bundle = Bundle.model_validate_json(response.text)
    kinds: dict[str, list[Any]] = {}
    for entry in bundle.entry:
        kinds.setdefault(entry.resource.get_resource_type(), []).append(entry.resource)
    assert {"Patient", "Appointment", "Procedure", "Consent"} <= set(kinds)
    [appointment] = [a for a in kinds["Appointment"] if a.id == walk_in["id"]]
    assert appointment.status == "fulfilled"
    [procedure] = [p for p in kinds["Procedure"] if p.id == record["id"]]
    assert procedure.status == "completed" and procedure.code.coding[0].code == "PHYSIO"
    by_url = check_bundle(response.json())
    patient_url = next(u for u, r in by_url.items() if r["resourceType"] == "Patient")
    assert kinds["Consent"][0].patient.reference == patient_url
    assert {p.actor.reference for p in appointment.participant if p.actor.reference} >= {
        patient_url
    }
    assert procedure.subject.reference == patient_url
    # What they refer to comes along: the therapist, the order, the department, the text.
    assert {
        "Practitioner",
        "ServiceRequest",
        "Location",
        "Organization",
        "DocumentReference",
    } <= set(kinds)
    [order] = [o for o in kinds["ServiceRequest"] if o.id == str(known["order:zhou"])]
    assert order.identifier[0].value == "DEMO-P0001-PHYSIO"
    assert order.identifier[0].type.coding[0].code == "PLAC"  # placer identifier (v2-0203)
    assert order.occurrenceTiming.repeat.count == 10
    sun_practitioner = next(p for p in kinds["Practitioner"] if p.id == str(known["user:pt.sun"]))
    assert sun_practitioner.name[0].family and sun_practitioner.name[0].given
    category = kinds["Consent"][0].category[0].coding[0]
    assert (category.system, category.code) == ("http://loinc.org", "59284-0")

    # A day's export as the department sees it: the same appointment, and the day's slots.
    today = local_today().isoformat()
    response = await http.get(
        f"/fhir/$bedside-export?from={today}&to={today}&_type=Appointment,Slot,Patient",
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
        f"/fhir/$bedside-export?patient={pid}&_type=Task,Patient",
        headers=await token(gql, "chief.wang"),
    )
    assert response.status_code == 200, response.text
    bundle = Bundle.model_validate_json(response.text)
    by_url = check_bundle(response.json())
    tasks = [e.resource for e in bundle.entry if isinstance(e.resource, Task)]
    assert len(tasks) == 1
    assert by_url[tasks[0].for_fhir.reference]["id"] == str(pid)
    assert tasks[0].status == "in-progress"
    assert tasks[0].identifier[0].value == str(instance.id)
    assert by_url[tasks[0].owner.reference]["resourceType"] == "Practitioner"


async def test_metadata_is_a_capability_statement(http: httpx.AsyncClient, demo: Services) -> None:
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement
    from fhir.resources.R4B.operationdefinition import OperationDefinition

    response = await http.get("/fhir/metadata")  # what generic clients fetch first, no token
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    statement = CapabilityStatement.model_validate_json(response.text)
    check_capability_statement(response.json())
    assert statement.fhirVersion == "4.0.1"
    [rest] = statement.rest
    assert {r.type for r in rest.resource} >= {"Patient"}
    operations = {o.name: o for o in rest.operation}
    assert operations["export"].definition == (
        "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"
    )
    operation = operations["bedside-export"]
    # The operation's definition resolves on this server.
    path = operation.definition.split("/fhir/", 1)[1]
    definition = await http.get(f"/fhir/{path}")
    assert definition.status_code == 200
    assert OperationDefinition.model_validate_json(definition.text).code == "bedside-export"


async def test_bulk_export_is_asynchronous_ndjson(
    http: httpx.AsyncClient, gql: GraphQLClient, demo: Services
) -> None:
    """FHIR Bulk Data Access (hl7.org/fhir/uv/bulkdata/export.html): kick-off with
    Prefer: respond-async answers 202 and a Content-Location; the status URL answers 200
    with a manifest; each output file is NDJSON; a synchronous Bundle never answers."""
    import json as jsonlib
    from datetime import timedelta

    from fhir.resources.R4B import get_fhir_model_class

    from tests.hl7.fhir_invariants import check_resource
    from tests.treatments.helpers import local_today

    zhou = await gql.as_user("patient.zhou")
    slots = (
        await zhou.data(
            'query($f: Date!, $t: Date!) { availableSlots(itemCode: "PHYSIO", from: $f, to: $t) { id } }',
            {"f": local_today().isoformat(), "t": (local_today() + timedelta(days=14)).isoformat()},
        )
    )["availableSlots"]
    await zhou.data(
        "mutation($s: ID!) { bookAppointment(slotId: $s) { id } }", {"s": slots[0]["id"]}
    )
    headers = await token(gql, "ma.zhao")
    # Without Prefer: respond-async the kick-off is refused, and nothing is exported.
    refused = await http.get("/fhir/$export", headers=headers)
    assert refused.status_code == 400 and refused.json()["resourceType"] == "OperationOutcome"
    assert await export_rows(demo) == []

    kick = await http.get(
        "/fhir/$export?_outputFormat=application/fhir%2Bndjson",
        headers={**headers, "Accept": "application/fhir+json", "Prefer": "respond-async"},
    )
    assert kick.status_code == 202 and not kick.content
    status_url = kick.headers["Content-Location"]
    assert status_url.startswith(demo.settings.public_url)
    status_path = status_url.removeprefix(demo.settings.public_url.rstrip("/"))
    assert (await http.get(status_path)).status_code == 401  # requiresAccessToken
    other = await token(gql, "pt.sun")
    assert (await http.get(status_path, headers=other)).status_code == 404  # not theirs

    status = await http.get(status_path, headers=headers)
    assert status.status_code == 200
    manifest = status.json()
    assert manifest["requiresAccessToken"] is True and manifest["error"] == []
    assert manifest["transactionTime"] and manifest["request"].endswith("fhir%2Bndjson")
    types = {o["type"] for o in manifest["output"]}
    assert {"Patient", "Appointment", "Slot", "Schedule", "ServiceRequest", "Practitioner"} <= types

    everything: dict[tuple[str, str], dict[str, Any]] = {}
    for output in manifest["output"]:
        path = output["url"].removeprefix(demo.settings.public_url.rstrip("/"))
        got = await http.get(path, headers=headers)
        assert got.status_code == 200
        assert got.headers["content-type"].startswith("application/fhir+ndjson")
        lines = got.text.strip("\n").split("\n")
        assert len(lines) == output["count"]
        for line in lines:
            resource = jsonlib.loads(line)
            assert resource["resourceType"] == output["type"]  # one type per file
            get_fhir_model_class(output["type"]).model_validate(resource)
            check_resource(resource)
            everything[(resource["resourceType"], resource["id"])] = resource
    # References are relative and resolve within the output.
    from tests.hl7.fhir_invariants import walk

    for resource in everything.values():
        for _, node in walk(resource):
            if isinstance(node, dict) and isinstance(node.get("reference"), str):
                kind, _, ident = node["reference"].partition("/")
                assert (kind, ident) in everything, node["reference"]
    assert "340202196203141234" not in jsonlib.dumps(list(everything.values()), ensure_ascii=False)
    [row] = await export_rows(demo)
    assert row.resource == "fhir.$export"

    # _type limits the files; DELETE ends the job.
    kick = await http.get(
        "/fhir/Patient/$export?_type=Patient", headers={**headers, "Prefer": "respond-async"}
    )
    assert kick.status_code == 202
    path = kick.headers["Content-Location"].removeprefix(demo.settings.public_url.rstrip("/"))
    assert [o["type"] for o in (await http.get(path, headers=headers)).json()["output"]] == [
        "Patient"
    ]
    assert (await http.delete(path, headers=headers)).status_code == 202
    assert (await http.get(path, headers=headers)).status_code == 404


async def test_mrn_system_is_the_hospitals(
    http: httpx.AsyncClient, gql: GraphQLClient, demo: Services
) -> None:
    pid = await patient_id(demo, "P0001")
    demo.settings.fhir_mrn_system = "urn:oid:1.2.156.112604.1.2.1"  # a hospital's own OID
    try:
        response = await http.get(f"/fhir/Patient/{pid}", headers=await token(gql, "pt.sun"))
    finally:
        demo.settings.fhir_mrn_system = ""
    identifiers = response.json()["identifier"]
    assert identifiers == [
        {
            "use": "usual",
            "type": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}
                ]
            },
            "system": "urn:oid:1.2.156.112604.1.2.1",
            "value": "P0001",
        }
    ]
