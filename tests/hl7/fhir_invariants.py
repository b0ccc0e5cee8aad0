"""FHIR R4 invariants the `fhir.resources` models do not check, written from the spec text.

Each check quotes the constraint it implements (FHIR R4 v4.0.1, hl7.org/fhir/R4/...).
They read the JSON as the server sent it, so they check the wire, not our models.
"""

from __future__ import annotations

import re
from typing import Any

UUID_URN = re.compile(r"^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def walk(node: Any, path: str = ""):  # type: ignore[no-untyped-def]
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for n, value in enumerate(node):
            yield from walk(value, f"{path}[{n}]")


def check_elements(resource: dict[str, Any]) -> None:
    # ele-1 (R4 element.html): "All FHIR elements must have a @value or children".
    for path, node in walk(resource):
        assert node not in ("", [], {}), f"ele-1: empty element at {path}"
    # Identifiers and telecoms carry values a receiver can match on: a masked value
    # (datatypes.html#Identifier: "The portion of the identifier typically relevant to the
    # user and which is unique within the context of the system") is not one.
    for path, node in walk(resource):
        if isinstance(node, dict) and (".identifier" in path or ".telecom" in path):
            value = node.get("value")
            if isinstance(value, str):
                assert "*" not in value, f"masked value at {path}: {value}"


def check_resource(resource: dict[str, Any]) -> None:
    check_elements(resource)
    kind = resource["resourceType"]
    if kind == "Appointment":
        # app-2: "Either start and end are specified, or neither"
        assert ("start" in resource) == ("end" in resource), "app-2"
        # app-3: "Only proposed or cancelled appointments can be missing start/end dates"
        if "start" not in resource:
            assert resource["status"] in ("proposed", "cancelled", "waitlist"), "app-3"
        # app-4: "Cancelation reason is only used for appointments that have been
        # cancelled, or no-show"
        if "cancelationReason" in resource:
            assert resource["status"] in ("cancelled", "noshow"), "app-4"
        # app-1 (participant): "Either the type or actor on the participant SHALL be specified"
        for participant in resource["participant"]:
            assert "type" in participant or "actor" in participant, "app-1"
    if kind == "Consent":
        # ppc-1: "Either a Policy or PolicyRule"
        assert "policy" in resource or "policyRule" in resource, "ppc-1"
        scope = {c["code"] for c in resource["scope"].get("coding", [])}
        # ppc-2..ppc-5: "IF Scope=privacy|research|adr|treatment, there must be a patient"
        if scope & {"patient-privacy", "research", "adr", "treatment"}:
            assert "patient" in resource, "ppc-2..5"
    if kind == "Task" and "lastModified" in resource and "authoredOn" in resource:
        # inv-1: "Last modified date must be greater than or equal to authored-on date."
        assert resource["lastModified"] >= resource["authoredOn"], "inv-1"
    if kind == "Schedule":
        assert resource.get("actor"), "Schedule.actor is 1..*"


def check_bundle(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Checks a Bundle and returns its resources by fullUrl."""
    # bdl-1: "total only when a search or history"
    if "total" in bundle:
        assert bundle["type"] in ("searchset", "history"), "bdl-1: total in a " + bundle["type"]
    # bdl-2: "entry.search only when a search"; bdl-3/4: request/response only in
    # batch/transaction/history (and their responses).
    for entry in bundle.get("entry", []):
        assert "search" not in entry or bundle["type"] == "searchset", "bdl-2"
        assert "request" not in entry, "bdl-3"
        assert "response" not in entry, "bdl-4"
        # bdl-5: "must be a resource unless there's a request or response"
        assert "resource" in entry, "bdl-5"
        # bdl-8: "fullUrl cannot be a version specific reference"
        assert "/_history/" not in entry["fullUrl"], "bdl-8"
    urls = [entry["fullUrl"] for entry in bundle.get("entry", [])]
    # bdl-7: "FullUrl must be unique in a bundle, or else entries with the same fullUrl
    # must have different meta.versionId"
    assert len(urls) == len(set(urls)), "bdl-7"
    by_url = {entry["fullUrl"]: entry["resource"] for entry in bundle.get("entry", [])}
    for url in urls:
        # uuid datatype (R4 datatypes.html#uuid): "urn:uuid:" then a lower case UUID.
        assert UUID_URN.match(url), f"fullUrl is not a urn:uuid: {url}"
    # bundle.html#references: an absolute reference that matches a fullUrl resolves to
    # that entry; a relative one resolves against the fullUrl's base, which a urn:uuid
    # does not have. So every reference must be one of the Bundle's own fullUrls.
    for resource in by_url.values():
        check_resource(resource)
        for path, node in walk(resource):
            if isinstance(node, dict) and isinstance(node.get("reference"), str):
                assert node["reference"] in by_url, (
                    f"{resource['resourceType']}{path}: {node['reference']} not in the Bundle"
                )
    return by_url


def check_capability_statement(cs: dict[str, Any]) -> None:
    check_elements(cs)
    # cpb-1: "A Capability Statement SHALL have at least one of REST, messaging or
    # document element."
    assert cs.get("rest") or cs.get("messaging") or cs.get("document"), "cpb-1"
    # cpb-2: "A Capability Statement SHALL have at least one of description, software,
    # or implementation element."
    assert cs.get("description") or cs.get("software") or cs.get("implementation"), "cpb-2"
    # cpb-14: "If kind = instance, implementation must be present and software may be present"
    if cs["kind"] == "instance":
        assert cs.get("implementation"), "cpb-14"
    # cpb-9: "A given resource can only be described once per RESTful mode."
    for rest in cs["rest"]:
        types = [r["type"] for r in rest.get("resource", [])]
        assert len(types) == len(set(types)), "cpb-9"
