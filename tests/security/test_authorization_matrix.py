"""The authorization matrix: who may call what, written down by hand, checked against the
running server for every demo role.

The verdicts below are the hospital's rules (README "Security": the role table; the demo
hospital's people; what each department may see), not read from the code: a field's
`permission_classes` are never consulted. Every GraphQL root field and every HTTP route
must have a row; a new field or route without one fails
`test_every_root_field_has_a_row` / `test_every_route_has_a_row`.

Three tables:
- FIELDS: may this role call this root field at all (with arguments naming real demo
  records wherever the field takes an id)?
- ROUTES: the same for the HTTP routes outside /graphql.
- RECORDS: for fields and routes that take an id, own department / other department /
  own record / someone else's record.
- SYNC_CASES and the card taps: the same rules through the PADs' sync push and a DingTalk
  card callback.

A refusal is UNAUTHENTICATED for the anonymous caller and FORBIDDEN or NOT_FOUND for a
signed-in one (the two are one answer: "not yours" must not tell "not there"), with no
data. An allowed call may still fail for a business reason (VALIDATION, CONFLICT ...), but
is never refused and never INTERNAL. Rows that the server still gets wrong carry a strict
xfail naming the hole, so they turn red (XPASS) the day the hole is closed and the mark
must go.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from graphql import GraphQLInputObjectType, get_named_type
from starlette.routing import Mount, Route

from api.app import create_app
from api.graphql.schema import schema
from api.models.patients import Patient
from api.models.people import User
from api.models.treatments import ConsentText, Schedule, TreatmentItem, TreatmentOrder
from api.services import Services
from tests.bots.conftest import bot_http, bots, redis_url  # noqa: F401 - fixtures
from tests.conftest import DEMO_PASSWORD, GraphQLClient, error_code
from tests.security.schema_cases import FieldCall, root_field_calls, selection_for
from tests.simulators.platforms import platform_sim, platform_sim_server  # noqa: F401
from tests.treatments.helpers import png_bytes

# ---------------------------------------------------------------------------------------
# Who is who in the demo hospital (api/demo/people.py, CONTRACT.md).
ANON = "anonymous"
ADMIN = "admin"
LI = "dr.li"  # surgeon, general surgery
WANG = "chief.wang"  # head of general surgery (also a surgeon)
ZHAO = "ma.zhao"  # medical affairs office (and quality)
CHEN = "vp.chen"  # vice-president for medical affairs (and committee)
SUN = "pt.sun"  # therapist, rehabilitation
HE = "chief.he"  # head of rehabilitation (also a therapist)
ZHOU = "patient.zhou"  # a patient of rehabilitation (P0001)
ROLES = (ANON, ADMIN, LI, WANG, ZHAO, CHEN, SUN, HE, ZHOU)

EVERYONE = frozenset(ROLES)
SIGNED_IN = EVERYONE - {ANON}
STAFF = SIGNED_IN - {ZHOU}
# Treatment work (orders, queue, bedside records): therapists, nurses, department heads.
TREATMENT = frozenset({ADMIN, WANG, SUN, HE})
# Treatment planning (schedules, days off, consent texts): department heads.
HEADS = frozenset({ADMIN, WANG, HE})
# Oversight of approvals (metrics, over-authority records): medical affairs, vice-president.
OVERSIGHT = frozenset({ADMIN, ZHAO, CHEN})
# Privileges and penalties are run by the medical affairs office (with quality control).
MEDICAL_AFFAIRS = frozenset({ADMIN, ZHAO})
# A surgeon applies; a department head applies for the department's surgeons.
APPLICANTS = frozenset({ADMIN, LI, WANG, HE})
# A grant is proposed by a department head or medical affairs (then approved).
GRANTERS = frozenset({ADMIN, WANG, HE, ZHAO})
# A patient's own orders, appointments, follow-ups (admin has no patient archive).
PATIENT_SELF = frozenset({ZHOU})
ONLY_ADMIN = frozenset({ADMIN})
NOBODY = frozenset()

# ---------------------------------------------------------------------------------------
# FIELDS: root field -> who may call it.
FIELDS: dict[str, frozenset[str]] = {
    # account and notices: everyone signed in, about themselves
    "me": SIGNED_IN,
    "login": EVERYONE,
    "logout": SIGNED_IN,
    "logoutEverywhere": SIGNED_IN,
    "changePassword": SIGNED_IN,
    "myNotices": SIGNED_IN,
    "markNoticeRead": SIGNED_IN,
    "vapidPublicKey": SIGNED_IN,
    "registerPushSubscription": SIGNED_IN,
    "myNotificationPreferences": SIGNED_IN,
    "setNotificationPreferences": SIGNED_IN,
    "noticeReceipts": STAFF,
    # patients: staff see their department's, a patient only themselves (RECORDS)
    "patients": SIGNED_IN,
    "patient": SIGNED_IN,
    # identity corrections, unbinding and the access log: the privacy office (医务处), admin
    "correctPatientIdentity": MEDICAL_AFFAIRS,
    "unbindPatientWechat": MEDICAL_AFFAIRS,
    "accessLog": MEDICAL_AFFAIRS,
    "exportAccessLog": MEDICAL_AFFAIRS,
    # the administrator's desk: accounts, heads, imports, the chains' verification
    "adminUsers": ONLY_ADMIN,
    "adminDepartments": ONLY_ADMIN,
    "auditVerification": ONLY_ADMIN,
    "updateUser": ONLY_ADMIN,
    "deactivateUser": ONLY_ADMIN,
    "unlockUser": ONLY_ADMIN,
    "resetPassword": ONLY_ADMIN,
    "setDepartmentHead": ONLY_ADMIN,
    "previewImport": ONLY_ADMIN,
    "confirmImport": ONLY_ADMIN,
    # approvals: staff; a patient never holds, signs, copies or files one
    "myTasks": SIGNED_IN,
    "myApplications": SIGNED_IN,
    "approvalInstance": SIGNED_IN,
    "approvalTask": SIGNED_IN,  # a decided task's link too; the record decides (RECORDS)
    "decideTask": STAFF,
    "withdrawApplication": STAFF,
    "resubmitApplication": STAFF,
    "transferTask": STAFF,
    "addSigner": STAFF,
    "carbonCopy": STAFF,
    "urgeTask": STAFF,
    "publishApprovalDefinition": ONLY_ADMIN,
    # 发起审批: any staff member starts a process with a form; a patient never files one
    "processDefinitions": STAFF,
    "processDefinition": STAFF,
    "startProcess": STAFF,
    # designing processes (a trial run, publishing): the medical affairs office
    "trialProcessDefinition": MEDICAL_AFFAIRS,
    "publishProcessDefinition": MEDICAL_AFFAIRS,
    "approvalMetrics": OVERSIGHT,
    "overAuthorityRecords": OVERSIGHT,
    # surgery
    "surgeryCatalog": STAFF,
    "surgeryApplication": STAFF,
    "surgeryNotice": STAFF,
    "submitSurgeryApplication": APPLICANTS,
    "precheckSurgeryApplication": APPLICANTS,
    "resubmitSurgeryApplication": APPLICANTS,  # the applicant's own, after a return
    "surgeryDocument": STAFF,  # a pre-op document, to those who may see the application
    # the person picker (transfer, add signer): staff look up staff
    "staff": STAFF,
    # privileges
    # dr.li's privileges: the surgeon, his department (general surgery) and oversight
    "privileges": frozenset({ADMIN, LI, WANG, ZHAO, CHEN}),
    "privilegeHeld": frozenset({ADMIN, LI, WANG, ZHAO, CHEN}),
    "grantPrivilege": GRANTERS,
    "suspendPrivilege": MEDICAL_AFFAIRS,
    "liftSuspension": MEDICAL_AFFAIRS,
    "revokePrivilege": MEDICAL_AFFAIRS,
    # penalties: staff read (their own, their department's), medical affairs score
    "penaltyItems": STAFF,
    "penaltyRules": STAFF,
    "penaltyScores": STAFF,
    "penalties": STAFF,
    "penalty": STAFF,
    "penaltyRanking": STAFF,
    "recordPenaltyScore": MEDICAL_AFFAIRS,
    "confirmPenaltyScore": MEDICAL_AFFAIRS,
    "appealPenaltyScore": STAFF,
    "issuePenalty": MEDICAL_AFFAIRS,
    "endPenalty": MEDICAL_AFFAIRS,
    # offline sync (PADs): staff
    "syncPull": STAFF,
    "syncConflicts": STAFF,
    "syncPush": STAFF,
    "resolveSyncConflict": STAFF,
    # treatments: the catalogue and free slots are public to the signed-in
    "treatmentItems": SIGNED_IN,
    "availableSlots": SIGNED_IN,
    # treatment statistics: the treating departments, their heads and oversight
    "treatmentStatistics": STAFF - {LI},
    "exportTreatmentStatistics": STAFF - {LI},
    # a patient's own orders, appointments and follow-ups
    "myOrders": PATIENT_SELF,
    "myAppointments": PATIENT_SELF,
    "myFollowUps": PATIENT_SELF,
    "appointment": SIGNED_IN,
    "appointmentReceipt": SIGNED_IN,
    "treatmentArchive": SIGNED_IN,
    "bookAppointment": SIGNED_IN,
    "joinWaitlist": SIGNED_IN,
    "cancelAppointment": SIGNED_IN,
    "rescheduleAppointment": SIGNED_IN,
    "answerFollowUp": SIGNED_IN,
    # treatment work
    "treatmentOrders": TREATMENT,
    "myWorklist": TREATMENT,
    "dayQueue": TREATMENT,
    "treatmentRecord": TREATMENT,
    "dueFollowUps": TREATMENT,
    "createTreatmentOrder": TREATMENT,
    "setOrderPaymentStatus": TREATMENT,
    "cancelTreatmentOrder": TREATMENT,
    "mergeTreatmentOrders": TREATMENT,
    "bookAppointmentSeries": TREATMENT,
    "registerWalkIn": TREATMENT,
    "checkIn": TREATMENT,
    "callNext": TREATMENT,
    "skipQueueEntry": TREATMENT,
    "startTreatment": TREATMENT,
    "saveTreatmentRecord": TREATMENT,
    "saveAssessment": TREATMENT,
    "attachPhoto": TREATMENT,
    "signConsent": TREATMENT,
    "archiveTreatment": TREATMENT,
    "registerTreatmentPatient": TREATMENT,
    "setPatientAllergies": TREATMENT,
    # treatment planning
    "createTreatmentSchedule": HEADS,
    "addScheduleException": HEADS,
    "publishConsentText": HEADS,
    "markNoShows": ONLY_ADMIN,
}

# Fields whose current answer disagrees with FIELDS because of a hole being closed.
FIELD_HOLES: dict[str, str] = {}

# ---------------------------------------------------------------------------------------
# ROUTES: (method, path) -> who may call it. "platform" routes answer only a request
# signed by the platform (DingTalk, WeCom, WeChat): a user's token opens none of them.
ROUTES: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/healthz"): EVERYONE,
    ("GET", "/readyz"): EVERYONE,
    # from another host without BEDSIDE_METRICS_TOKEN: nobody (a user's token is not it)
    ("GET", "/metrics"): NOBODY,
    ("POST", "/graphql"): EVERYONE,  # each field by FIELDS
    ("GET", "/graphql"): EVERYONE,  # the IDE page (development); no queries via GET
    ("POST", "/bots/dingtalk/callback"): NOBODY,  # platform-signed only
    ("GET", "/bots/dingtalk/callback"): EVERYONE,  # a plain liveness text
    ("POST", "/bots/wecom/callback"): NOBODY,  # platform-signed only
    ("GET", "/bots/wecom/callback"): NOBODY,  # URL verification, platform-signed
    ("POST", "/bots/wechat-oa/callback"): NOBODY,  # platform-signed only
    ("GET", "/bots/wechat-oa/callback"): NOBODY,  # URL verification, platform-signed
    # exchange the platform's one-time login code: without a valid code, nobody (a token
    # adds nothing); unset-up platforms have no endpoint (404)
    ("POST", "/bots/dingtalk/card-callback"): NOBODY,  # signed with the registered apiSecret
    ("POST", "/bots/dingtalk/login"): NOBODY,
    ("GET", "/bots/signin-config"): EVERYONE,  # which platform signs in (corp id, no secret)
    ("GET", "/bots/wecom/oauth"): EVERYONE,  # a redirect to WeCom's authorize page
    ("GET", "/bots/wecom/oauth/callback"): NOBODY,  # needs WeCom's code and our state
    ("POST", "/bots/wecom/login"): NOBODY,
    ("GET", "/bots/wechat-oa/oauth"): EVERYONE,  # a redirect to WeChat
    ("GET", "/bots/wechat-oa/oauth/callback"): NOBODY,  # needs WeChat's code and our state
    ("POST", "/bots/wechat-oa/bind"): NOBODY,  # needs a ticket from the OAuth round trip
    ("POST", "/bots/bind"): STAFF,  # binds a DingTalk/WeCom id: staff only
    # a file for a record, an application or a form: staff (each checked where it is used)
    ("POST", "/attachments"): STAFF,
    ("HEAD", "/sync/attachments/{sha256}"): frozenset({SUN}),  # pt.sun's upload: its uploader
    ("PUT", "/sync/attachments/{sha256}"): TREATMENT,  # photos and signatures of treatment work
    ("GET", "/fhir/Patient/{patient_id}"): STAFF - {LI, WANG},  # REHAB patient: RECORDS
    ("GET", "/fhir/$bedside-export"): STAFF - {LI, WANG},  # of a REHAB patient: RECORDS
    ("GET", "/fhir/OperationDefinition/bedside-export"): EVERYONE,  # what the operation is
    ("GET", "/fhir/metadata"): EVERYONE,  # the CapabilityStatement generic clients read first
    # Bulk Data: staff start an export of what they may see; the job is its starter's only.
    ("GET", "/fhir/$export"): STAFF,
    ("POST", "/fhir/$export"): STAFF,
    ("GET", "/fhir/Patient/$export"): STAFF,
    ("POST", "/fhir/Patient/$export"): STAFF,
    ("GET", "/fhir/bulk-status/{job_id}"): frozenset({SUN}),  # pt.sun's job
    ("DELETE", "/fhir/bulk-status/{job_id}"): frozenset({SUN}),
    ("GET", "/fhir/bulk-files/{job_id}/{name}"): frozenset({SUN}),
    # other systems (手麻, HIS) with a service token of their own: a user's token is not one
    ("GET", "/api/privilege-check"): NOBODY,
    ("GET", "/n/{notice_id}"): EVERYONE,  # a message's link: redirects into the app
    ("GET", "/"): EVERYONE,  # the PWA shell
    ("GET", "/assets"): EVERYONE,
}
ROUTE_HOLES: dict[tuple[str, str], str] = {}


# ---------------------------------------------------------------------------------------
# The demo hospital's records the calls name, plus a few made through the public API.
@dataclass
class World:
    services: Services
    http: httpx.AsyncClient
    clients: dict[str, GraphQLClient]
    ids: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.ids[key]


_tokens: dict[str, str] = {}


async def signed_in(http: httpx.AsyncClient, username: str) -> GraphQLClient:
    """One sign-in per role for the whole run: the demo snapshot is restored before each
    test with the same users and token versions, so a token stays valid (and a session
    ended by a test is signed in again)."""
    client = GraphQLClient(http, _tokens.get(username))
    if client.token is None or (await client.execute("{ me { id } }")).get("errors"):
        client = await GraphQLClient(http).as_user(username)
        _tokens[username] = str(client.token)
    return client


async def _one(services: Services, stmt: Any) -> Any:
    async with services.db.session() as session:
        return (await session.execute(stmt)).scalar_one()


SUBMIT = """mutation($i: SurgeryApplicationInput!) { submitSurgeryApplication(input: $i) {
  id tasks { id status assignee { username } } } }"""
SLOTS = (
    'query($f: Date!, $t: Date!) { availableSlots(itemCode: "PHYSIO", from: $f, to: $t) { id } }'
)


async def build_world(services: Services, http: httpx.AsyncClient, *, records: bool) -> World:
    clients = {role: await signed_in(http, role) for role in ROLES if role != ANON}
    clients[ANON] = GraphQLClient(http)
    world = World(services, http, clients)
    ids = world.ids
    for mrn in ("P0001", "P0002", "P0005"):
        ids[mrn] = str(await _one(services, sa.select(Patient.id).where(Patient.mrn == mrn)))
    for username in (LI, WANG, SUN, HE, ZHOU):
        ids[username] = str(
            await _one(services, sa.select(User.id).where(User.username == username))
        )
    ids["zhou_order"] = str(
        await _one(
            services,
            sa.select(TreatmentOrder.id).where(TreatmentOrder.his_order_no == "DEMO-P0001-PHYSIO"),
        )
    )
    physio = await _one(services, sa.select(TreatmentItem.id).where(TreatmentItem.code == "PHYSIO"))
    ids["physio_schedule"] = str(
        await _one(services, sa.select(sa.func.min(Schedule.id)).where(Schedule.item_id == physio))
    )
    ids["physio_consent"] = str(
        await _one(services, sa.select(ConsentText.id).where(ConsentText.item_id == physio))
    )
    today = datetime.now(services.settings.tz).date()
    ids["today"] = today.isoformat()
    ids["week"] = (today + timedelta(days=13)).isoformat()
    if not records:
        return world
    slots = (await clients[ZHOU].data(SLOTS, {"f": ids["today"], "t": ids["week"]}))[
        "availableSlots"
    ]
    ids["slot"], ids["slot2"] = slots[-1]["id"], slots[-2]["id"]
    # patient.zhou's own appointment (REHAB)
    booked = await clients[ZHOU].data(
        "mutation($s: ID!, $o: ID) { bookAppointment(slotId: $s, orderId: $o) { id } }",
        {"s": ids["slot"], "o": ids["zhou_order"]},
    )
    ids["zhou_appointment"] = booked["bookAppointment"]["id"]
    # another REHAB patient's (P0005) appointment: an order and a walk-in by the therapist
    order = await clients[SUN].data(
        'mutation($p: ID!) { createTreatmentOrder(input: {patientId: $p, itemCode: "PHYSIO", sessions: 2, paid: true}) { id } }',
        {"p": ids["P0005"]},
    )
    ids["p5_order"] = order["createTreatmentOrder"]["id"]
    walk_in = await clients[SUN].data(
        'mutation($o: ID!) { registerWalkIn(orderId: $o, room: "理疗室1 Physio 1") { id } }',
        {"o": ids["p5_order"]},
    )
    ids["p5_appointment"] = walk_in["registerWalkIn"]["id"]
    # dr.li's surgery application for a GENERAL SURGERY patient (P0002); grade 2 goes
    # to the head of general surgery
    application = {
        "patientId": ids["P0002"],
        "procedureCode": "47.09",
        "plannedAt": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
        "emergency": False,
        "diagnosis": "急性阑尾炎",
        "anesthesia": "全身麻醉",
        "preopAssessment": "ASA I级",
        "consentSigned": True,
    }
    instance = (await clients[LI].data(SUBMIT, {"i": application}))["submitSurgeryApplication"]
    ids["li_instance"] = instance["id"]
    (task,) = [t for t in instance["tasks"] if t["status"] == "pending"]
    assert task["assignee"]["username"] == WANG
    ids["wang_task"] = task["id"]
    return world


# ---------------------------------------------------------------------------------------
# Arguments naming real records for the root calls (else the schema's minimal sample:
# id 1, "x", today), so a refusal is not just "there is no record 1".
def root_arguments(world: World) -> dict[str, dict[str, Any]]:
    w = world
    return {
        "patient": {"id": w["P0001"]},
        "approvalInstance": {"id": w["li_instance"]},
        "surgeryApplication": {"instanceId": w["li_instance"]},
        "surgeryNotice": {"instanceId": w["li_instance"]},
        "withdrawApplication": {"id": w["li_instance"]},
        "resubmitApplication": {"id": w["li_instance"]},
        "carbonCopy": {"instanceId": w["li_instance"], "usernames": [SUN]},
        "urgeTask": {"taskId": w["wang_task"]},
        "decideTask": {"taskId": w["wang_task"], "decision": "RETURN"},
        "processDefinition": {"key": "leave"},
        "startProcess": {
            "definitionKey": "seal",
            "form": {
                "seal_type": "department",
                "document": "进修证明",
                "copies": 1,
                "used_on": w["today"],
                "purpose": "进修报名",
            },
        },
        "transferTask": {"taskId": w["wang_task"], "toUsername": "dr.qian"},
        "addSigner": {"taskId": w["wang_task"], "username": "dr.qian"},
        "appointment": {"id": w["zhou_appointment"]},
        "appointmentReceipt": {"id": w["zhou_appointment"]},
        "cancelAppointment": {"id": w["p5_appointment"]},
        "rescheduleAppointment": {"id": w["p5_appointment"], "slotId": w["slot2"]},
        "bookAppointment": {"slotId": w["slot2"]},
        "joinWaitlist": {"slotId": w["slot2"]},
        "treatmentOrders": {"patientId": w["P0001"]},
        "setOrderPaymentStatus": {"orderId": w["p5_order"], "status": "PAID"},
        "cancelTreatmentOrder": {"orderId": w["p5_order"]},
        "registerWalkIn": {"orderId": w["zhou_order"]},
        "checkIn": {"appointmentId": w["zhou_appointment"]},
        "startTreatment": {"appointmentId": w["p5_appointment"]},
        "setPatientAllergies": {"patientId": w["P0005"], "allergies": []},
        "availableSlots": {"itemCode": "PHYSIO", "from": w["today"], "to": w["week"]},
        "myWorklist": {"date": w["today"]},
        "dayQueue": {"queueKey": "room:理疗室1 Physio 1", "date": w["today"]},
        "dueFollowUps": {"until": w["week"] + "T00:00:00+08:00"},
        "treatmentStatistics": {"from": w["today"], "to": w["week"]},
        "exportTreatmentStatistics": {"from": w["today"], "to": w["week"]},
        "privileges": {"surgeonUsername": LI},
        "privilegeHeld": {
            "surgeonUsername": LI,
            "procedureCode": "47.09",
            "at": w["today"] + "T09:00:00+08:00",
        },
        "approvalMetrics": {
            "since": "2026-01-01T00:00:00+08:00",
            "until": "2026-02-01T00:00:00+08:00",
        },
        "overAuthorityRecords": {
            "since": "2026-01-01T00:00:00+08:00",
            "until": "2026-02-01T00:00:00+08:00",
        },
        "penaltyRanking": {
            "since": "2026-01-01T00:00:00+08:00",
            "until": "2026-02-01T00:00:00+08:00",
        },
        "login": {"username": "dr.qian", "password": DEMO_PASSWORD},
        "treatmentArchive": {"patientId": w["P0001"]},
        "recordPenaltyScore": {
            "input": {
                "doctorUsername": LI,
                "itemCode": "HX-02",
                "occurredAt": datetime.now(UTC).isoformat(),
            }
        },
        "suspendPrivilege": {
            "input": {
                "surgeonUsername": "dr.qian",
                "reason": "考核",
                "startsAt": datetime.now(UTC).isoformat(),
            }
        },
        # per caller: a PAD's client group and a new archive belong to whoever made them
        "syncPush": lambda role: {
            "input": {
                "clientGroupId": f"pad-{role}",
                "clientId": f"pad-{role}-1",
                "schemaVersion": 1,
                "mutations": [],
            }
        },
        "registerTreatmentPatient": lambda role: {"input": {"mrn": f"N-{role}", "name": "新患者"}},
        "changePassword": {
            "currentPassword": "not-the-password",
            "newPassword": "Another-Passw0rd!",
        },
    }


def _document(call: FieldCall, variables: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The call with our variables for the arguments we name (declared with their schema
    types), the schema's minimal samples for the other required ones."""
    root = schema._schema.get_type("Query" if call.operation == "query" else "Mutation")
    gql_field = root.fields[call.name]  # type: ignore[union-attr]
    merged = {**call.variables, **variables}
    declarations = ", ".join(f"${name}: {gql_field.args[name].type}" for name in merged)
    arguments = ", ".join(f"{name}: ${name}" for name in merged)
    head = f"{call.operation} Call({declarations})" if merged else f"{call.operation} Call"
    body = f"{call.name}({arguments})" if merged else call.name
    return f"{head} {{ {body}{selection_for(gql_field)} }}", merged


REFUSALS = ("UNAUTHENTICATED", "FORBIDDEN", "NOT_FOUND")


def _names_a_record(type_: Any, seen: frozenset[str] = frozenset()) -> bool:
    named = get_named_type(type_)
    if named.name == "ID":
        return True
    if isinstance(named, GraphQLInputObjectType) and named.name not in seen:
        return any(_names_a_record(f.type, seen | {named.name}) for f in named.fields.values())
    return False


def names_a_record(call: FieldCall, variables: dict[str, Any]) -> bool:
    """Whether the call names a record (an ID among its arguments): then an allowed role
    may still be refused that record (not theirs), which RECORDS checks record by record."""
    root = schema._schema.get_type("Query" if call.operation == "query" else "Mutation")
    args = root.fields[call.name].args  # type: ignore[union-attr]
    return any(_names_a_record(args[name].type) for name in variables)


def _verdict(
    body: dict[str, Any], name: str, refusals: tuple[str, ...] = REFUSALS
) -> tuple[str, str]:
    """("allowed" | "refused" | "internal", detail) of one call's answer."""
    errors = [e for e in body.get("errors") or [] if (e.get("path") or [name])[0] == name]
    codes = [error_code(e) for e in errors]
    if "INTERNAL" in codes or any(c is None for c in codes):
        return "internal", str(errors)
    if codes and codes[0] in refusals:
        if (body.get("data") or {}).get(name) is not None:
            return "leaked", str(body)
        return "refused", str(codes[0])
    return "allowed", str(codes[0]) if codes else "data"


SESSION_ENDING = ("logout", "logoutEverywhere", "changePassword")

# Fields scoped by a name rather than an id (an item code, a queue key): the root call
# names rehabilitation's, which an allowed role of another department is refused; the
# department rule itself is checked in RECORDS.
SCOPED_BY_NAME = {"publishConsentText", "createTreatmentSchedule", "dayQueue", "callNext"}


def _field_params() -> list[Any]:
    calls = sorted(
        root_field_calls(), key=lambda c: (c.operation != "query", c.name in SESSION_ENDING, c.name)
    )
    params = []
    for call in calls:
        marks = []
        if call.name in FIELD_HOLES:
            marks.append(pytest.mark.xfail(strict=True, reason=FIELD_HOLES[call.name]))
        params.append(pytest.param(call, id=f"{call.operation}.{call.name}", marks=marks))
    return params


def test_every_root_field_has_a_row() -> None:
    names = {c.name for c in root_field_calls()}
    assert sorted(names - FIELDS.keys()) == [], "root fields without a row in FIELDS"
    assert sorted(FIELDS.keys() - names) == [], "rows in FIELDS for fields that are gone"
    # The same list as the schema's own introspection.
    introspected = schema.execute_sync(
        "{ __schema { queryType { fields { name } } mutationType { fields { name } } } }"
    ).data
    assert introspected is not None
    listed = {
        f["name"]
        for kind in ("queryType", "mutationType")
        for f in introspected["__schema"][kind]["fields"]
    }
    assert listed == names


@pytest.mark.parametrize("call", _field_params())
async def test_root_field(call: FieldCall, demo: Services, http: httpx.AsyncClient) -> None:
    world = await build_world(demo, http, records=True)
    arguments = root_arguments(world).get(call.name, {})
    allowed = FIELDS[call.name]
    wrong: list[str] = []
    # The refused first: an allowed caller's mutation may change what the others see.
    for role in sorted(ROLES, key=lambda r: r in allowed):
        document, variables = _document(call, arguments(role) if callable(arguments) else arguments)
        scoped = names_a_record(call, variables) or call.name in SCOPED_BY_NAME
        body = await world.clients[role].execute(document, variables)
        verdict, detail = _verdict(body, call.name)
        if verdict in ("internal", "leaked"):
            wrong.append(f"{role}: {verdict} {detail}")
        elif role in allowed and verdict != "allowed":
            if not scoped or detail == "UNAUTHENTICATED":
                wrong.append(f"{role} should be allowed, was refused: {detail}")
        elif role not in allowed:
            if verdict != "refused":
                wrong.append(f"{role} should be refused, was allowed: {detail}")
            elif role == ANON and detail != "UNAUTHENTICATED":
                wrong.append(f"anonymous refused with {detail}, not UNAUTHENTICATED")
    assert wrong == [], f"{call.operation} {call.name}:\n" + "\n".join(wrong)


# ---------------------------------------------------------------------------------------
# RECORDS: one field or route, one record, each role's verdict.
@dataclass(frozen=True)
class RecordCase:
    what: str  # a name for the case: field + which record
    document: str
    variables: Callable[[World], dict[str, Any]]
    allowed: frozenset[str]
    hole: str | None = None  # a strict xfail naming the hole the server still has
    roles: tuple[str, ...] = ROLES
    # Codes that also count as a refusal here: a target the rule forbids (a patient as an
    # assignee) is an input error naming its field; a different identity for an archived
    # patient is IDENTITY_MISMATCH.
    refused_as: tuple[str, ...] = ()


def _case_params(cases: list[RecordCase]) -> list[Any]:
    return [
        pytest.param(
            case,
            id=case.what,
            marks=[pytest.mark.xfail(strict=True, reason=case.hole)] if case.hole else [],
        )
        for case in cases
    ]


PATIENT = "query($id: ID!) { patient(id: $id) { id name } }"
INSTANCE = "query($id: ID!) { approvalInstance(id: $id) { id status } }"
APPOINTMENT = "query($id: ID!) { appointment(id: $id) { id status } }"
RECEIPT = "query($id: ID!) { appointmentReceipt(id: $id) { filename sizeBytes } }"
SEES_ALL = frozenset({ADMIN, ZHAO, CHEN})  # medical affairs and the vice-president: every patient
GS_STAFF = frozenset({LI, WANG})
REHAB_STAFF = frozenset({SUN, HE})

RECORDS: list[RecordCase] = [
    # a patient: own department / other department / own record / someone else's
    RecordCase(
        "patient: general surgery's P0002",
        PATIENT,
        lambda w: {"id": w["P0002"]},
        SEES_ALL | GS_STAFF,
    ),
    RecordCase(
        "patient: rehabilitation's P0005",
        PATIENT,
        lambda w: {"id": w["P0005"]},
        SEES_ALL | REHAB_STAFF,
    ),
    RecordCase(
        "patient: patient.zhou's own P0001",
        PATIENT,
        lambda w: {"id": w["P0001"]},
        SEES_ALL | REHAB_STAFF | {ZHOU},
    ),
    RecordCase(
        "patient: the patient's own archive via treatmentOrders of P0001",
        "query($p: ID!) { treatmentOrders(patientId: $p) { id } }",
        lambda w: {"p": w["P0001"]},
        frozenset({ADMIN}) | REHAB_STAFF,
    ),
    RecordCase(
        "treatmentOrders: rehabilitation's P0005, asked by general surgery's head",
        "query($p: ID!) { treatmentOrders(patientId: $p) { id } }",
        lambda w: {"p": w["P0005"]},
        frozenset({ADMIN}) | REHAB_STAFF,
    ),
    # an approval: the applicant's own / the department head who holds the task / others
    RecordCase(
        "approvalInstance: dr.li's application",
        INSTANCE,
        lambda w: {"id": w["li_instance"]},
        frozenset({ADMIN, LI, WANG, ZHAO, CHEN}),
    ),
    RecordCase(
        "decideTask: chief.wang's task on dr.li's application",
        "mutation($t: ID!) { decideTask(taskId: $t, decision: APPROVE) { id status } }",
        lambda w: {"t": w["wang_task"]},
        frozenset({WANG}),
        roles=(LI, HE, ZHAO, SUN, ZHOU, WANG),
    ),
    RecordCase(
        "transferTask: chief.wang's task handed to a patient",
        'mutation($t: ID!) { transferTask(taskId: $t, toUsername: "patient.zhou") { id } }',
        lambda w: {"t": w["wang_task"]},
        NOBODY,
        refused_as=("VALIDATION",),
        roles=(WANG,),
    ),
    RecordCase(
        "addSigner: a patient added as a signer",
        'mutation($t: ID!) { addSigner(taskId: $t, username: "patient.zhou") { id } }',
        lambda w: {"t": w["wang_task"]},
        NOBODY,
        refused_as=("VALIDATION",),
        roles=(WANG,),
    ),
    RecordCase(
        "carbonCopy: dr.li's application copied to a patient",
        'mutation($i: ID!) { carbonCopy(instanceId: $i, usernames: ["patient.zhou"]) { id } }',
        lambda w: {"i": w["li_instance"]},
        NOBODY,
        refused_as=("VALIDATION",),
        roles=(LI,),
    ),
    # appointments: own record / someone else's / own department / other department
    RecordCase(
        "appointment: patient.zhou's own",
        APPOINTMENT,
        lambda w: {"id": w["zhou_appointment"]},
        SEES_ALL | REHAB_STAFF | {ZHOU},
    ),
    RecordCase(
        "appointment: another patient's (P0005)",
        APPOINTMENT,
        lambda w: {"id": w["p5_appointment"]},
        SEES_ALL | REHAB_STAFF,
    ),
    RecordCase(
        "appointmentReceipt: patient.zhou's own",
        RECEIPT,
        lambda w: {"id": w["zhou_appointment"]},
        SEES_ALL | REHAB_STAFF | {ZHOU},
    ),
    RecordCase(
        "appointmentReceipt: another patient's (P0005)",
        RECEIPT,
        lambda w: {"id": w["p5_appointment"]},
        SEES_ALL | REHAB_STAFF,
    ),
    RecordCase(
        "cancelAppointment: another patient's (P0005), by patient.zhou or general surgery",
        "mutation($id: ID!) { cancelAppointment(id: $id) { id status } }",
        lambda w: {"id": w["p5_appointment"]},
        frozenset(),
        roles=(ZHOU, LI, WANG),
    ),
    # department scoping of treatment work: rehabilitation's, by general surgery's head
    RecordCase(
        "myWorklist: a rehabilitation therapist's, asked by general surgery's head",
        "query($d: Date!, $t: ID) { myWorklist(date: $d, therapistId: $t) { id } }",
        lambda w: {"d": w["today"], "t": w[SUN]},
        frozenset({ADMIN, HE, SUN}),
        roles=(WANG, HE),
    ),
    RecordCase(
        "dayQueue: rehabilitation's room, asked by general surgery's head",
        'query($d: Date!) { dayQueue(queueKey: "room:理疗室1 Physio 1", date: $d) { id } }',
        lambda w: {"d": w["today"]},
        frozenset({ADMIN, HE, SUN}),
        roles=(WANG,),
    ),
    RecordCase(
        "publishConsentText: rehabilitation's item, by general surgery's head",
        'mutation { publishConsentText(itemCode: "PHYSIO", title: "同意书", body: "内容") { id } }',
        lambda w: {},
        frozenset({ADMIN, HE}),
        roles=(WANG,),
    ),
    RecordCase(
        "createTreatmentSchedule: rehabilitation's item, by general surgery's head",
        'mutation($d: Date!) { createTreatmentSchedule(input: {itemCode: "PHYSIO", startTime: "18:00", '
        'endTime: "19:00", validFrom: $d, room: "理疗室9"}) { scheduleId } }',
        lambda w: {"d": w["week"]},
        frozenset({ADMIN, HE}),
        roles=(WANG,),
    ),
    RecordCase(
        "addScheduleException: rehabilitation's schedule, by general surgery's head",
        'mutation($d: Date!, $s: ID) { addScheduleException(day: $d, reason: "停诊", scheduleId: $s) }',
        lambda w: {"d": w["week"], "s": w["physio_schedule"]},
        frozenset({ADMIN, HE}),
        roles=(WANG,),
    ),
    RecordCase(
        "callNext: rehabilitation's queue, by general surgery's head",
        'mutation { callNext(queueKey: "room:理疗室1 Physio 1") { id } }',
        lambda w: {},
        frozenset({ADMIN, HE, SUN}),
        roles=(WANG,),
    ),
    RecordCase(
        "createTreatmentOrder: a replayed HIS order number of another department's patient",
        'mutation($p: ID!) { createTreatmentOrder(input: {patientId: $p, itemCode: "PHYSIO", '
        'sessions: 1, paid: true, hisOrderNo: "DEMO-P0001-PHYSIO"}) { id patient { name } } }',
        lambda w: {"p": w["P0002"]},
        frozenset({ADMIN, HE, SUN}),
        roles=(WANG,),
    ),
    RecordCase(
        "registerTreatmentPatient: overwriting an archived patient's identity",
        'mutation { registerTreatmentPatient(input: {mrn: "P0001", name: "冒名者", '
        'idNumber: "110101199001011237", phone: "13900000000"}) { id } }',
        lambda w: {},
        frozenset(),
        refused_as=("IDENTITY_MISMATCH",),
        roles=(SUN,),
    ),
    # penalties: a doctor appeals their own score only
    RecordCase(
        "appealPenaltyScore: dr.li's score",
        'mutation($id: ID!) { appealPenaltyScore(id: $id, reason: "有误") { id } }',
        lambda w: {"id": "1"},
        frozenset({LI}),
        roles=(HE, SUN, WANG, LI),
    ),
]


@pytest.mark.parametrize("case", _case_params(RECORDS))
async def test_record(case: RecordCase, demo: Services, http: httpx.AsyncClient) -> None:
    world = await build_world(demo, http, records=True)
    variables = case.variables(world)
    wrong = []
    name = case.document.split("{", 2)[1].split("(")[0].strip()
    for role in sorted(case.roles, key=lambda r: r in case.allowed):
        body = await world.clients[role].execute(case.document, variables)
        verdict, detail = _verdict(body, name, REFUSALS + case.refused_as)
        if verdict in ("internal", "leaked"):
            wrong.append(f"{role}: {verdict} {detail}")
        elif role in case.allowed and verdict != "allowed":
            wrong.append(f"{role} should be allowed, was refused: {detail}")
        elif role not in case.allowed and verdict != "refused":
            wrong.append(f"{role} should be refused, was allowed: {detail}")
    assert wrong == [], f"{case.what}:\n" + "\n".join(wrong)


# ---------------------------------------------------------------------------------------
# HTTP routes.
def app_routes(app: Any) -> set[tuple[str, str]]:
    found = set()
    for route in app.routes:
        if isinstance(route, Mount):
            found.add(("GET", route.path))
        elif isinstance(route, Route):
            for method in route.methods or ():
                if method != "HEAD" or route.path.startswith("/sync/"):
                    found.add((method, route.path))
    if ("GET", "/{path:path}") in found:  # the built PWA's catch-all: "/" stands for it
        found.discard(("GET", "/{path:path}"))
        found.add(("GET", "/"))
    return found


# Only there when the PWA is built (pwa/dist).
BUILT_PWA_ONLY = {("GET", "/assets")}


def test_every_route_has_a_row(app: Any) -> None:
    routes = app_routes(app)
    assert sorted(routes - ROUTES.keys()) == [], "routes without a row in ROUTES"
    assert sorted(ROUTES.keys() - routes - BUILT_PWA_ONLY) == [], "rows for routes that are gone"


def _route_params() -> list[Any]:
    return [
        pytest.param(
            key,
            id=f"{key[0]} {key[1]}",
            marks=[pytest.mark.xfail(strict=True, reason=ROUTE_HOLES[key])]
            if key in ROUTE_HOLES
            else [],
        )
        for key in ROUTES
    ]


CHUNK, REST = b"\x89PNG partial chunk", b" and the rest"


def upload_digest(role: str) -> str:
    return hashlib.sha256(CHUNK + REST + role.encode()).hexdigest()


async def prepare_routes(world: World) -> None:
    """What the route calls name: a one-time DingTalk binding link per caller (as an
    unbound DingTalk user is sent), pt.sun's half-done upload and pt.sun's bulk export."""
    from bots import identity

    kicked = await world.http.get(
        "/fhir/$export",
        headers={"authorization": f"Bearer {world.clients[SUN].token}", "prefer": "respond-async"},
    )
    assert kicked.status_code == 202, kicked.text
    world.ids["bulk_job"] = kicked.headers["content-location"].rsplit("/", 1)[1]

    async with world.services.db.transaction() as session:
        for role in ROLES:
            link = await identity.create_binding_link(
                session, world.services, "dingtalk", f"ding-{role}"
            )
            world.ids[f"bind:{role}"] = link.split("token=", 1)[1]
    started = await world.http.put(
        f"/sync/attachments/{upload_digest('mine')}",
        content=CHUNK,
        headers={
            "authorization": f"Bearer {world.clients[SUN].token}",
            "content-type": "image/png",
            "upload-offset": "0",
            "upload-length": str(len(CHUNK + REST + b"mine")),
        },
    )
    assert started.status_code < 300, started.text


def route_request(key: tuple[str, str], world: World, role: str) -> dict[str, Any]:
    """A request for the route that names real records (or, for platform routes, is well
    formed but unsigned)."""
    method, path = key
    ms = int(datetime.now(UTC).timestamp() * 1000)
    chunk = CHUNK
    # HEAD asks about pt.sun's upload; PUT starts the caller's own.
    digest = upload_digest("mine" if method == "HEAD" else role)
    url = {
        "/fhir/Patient/{patient_id}": f"/fhir/Patient/{world['P0005']}",
        "/fhir/$bedside-export": f"/fhir/$bedside-export?patient={world['P0005']}",
        "/fhir/bulk-status/{job_id}": f"/fhir/bulk-status/{world['bulk_job']}",
        "/fhir/bulk-files/{job_id}/{name}": f"/fhir/bulk-files/{world['bulk_job']}/Patient.ndjson",
        "/sync/attachments/{sha256}": f"/sync/attachments/{digest}",
        "/n/{notice_id}": "/n/1?t=unsigned",
        "/assets": "/assets/none.js",
        "/bots/dingtalk/callback": f"/bots/dingtalk/callback?timestamp={ms}&nonce=n{ms}&signature=bad",
        "/bots/wecom/callback": f"/bots/wecom/callback?msg_signature=bad&timestamp={ms // 1000}&nonce=n{ms}&echostr=x",
        "/bots/wechat-oa/callback": f"/bots/wechat-oa/callback?signature=bad&timestamp={ms // 1000}&nonce=n{ms}&echostr=x",
        "/bots/wechat-oa/oauth/callback": "/bots/wechat-oa/oauth/callback?code=x&state=forged",
        "/bots/wecom/oauth/callback": "/bots/wecom/oauth/callback?code=x&state=forged",
        "/bots/wecom/oauth": "/bots/wecom/oauth?next=/tasks",
        "/graphql": "/graphql",
    }.get(path, path)
    request: dict[str, Any] = {"method": method, "url": url}
    if method in ("POST", "PUT"):
        request["content"] = {
            "/graphql": json.dumps({"query": "{ __typename }"}).encode(),
            "/bots/bind": json.dumps({"token": world[f"bind:{role}"]}).encode(),
            "/bots/dingtalk/login": json.dumps({"code": "x"}).encode(),
            "/bots/wecom/login": json.dumps({"code": "x"}).encode(),
            "/bots/wechat-oa/bind": json.dumps(
                {
                    "ticket": "forged",
                    "name": "周建国",
                    "idNumber": "340202196203141234",
                    "phone": "13805531234",
                }
            ).encode(),
            "/bots/dingtalk/callback": json.dumps({"encrypt": "bad"}).encode(),
            "/sync/attachments/{sha256}": chunk,
            "/fhir/$export": json.dumps({"resourceType": "Parameters", "parameter": []}).encode(),
            "/fhir/Patient/$export": json.dumps(
                {"resourceType": "Parameters", "parameter": []}
            ).encode(),
        }.get(path, b"<xml><Encrypt>bad</Encrypt></xml>")
        request["headers"] = {"content-type": "application/json"}
        if path == "/attachments":  # a photo, as the PAD sends it
            del request["content"], request["headers"]
            request["files"] = {"file": ("photo.png", png_bytes(), "image/png")}
        if path == "/sync/attachments/{sha256}":
            request["headers"] = {
                "content-type": "image/png",
                "upload-offset": "0",
                "upload-length": str(len(CHUNK + REST + role.encode())),
            }
    if path.endswith("/$export"):  # Bulk Data is asynchronous (FHIR Bulk Data, kick-off)
        request.setdefault("headers", {})["prefer"] = "respond-async"
    return request


# A refusal over HTTP: 401 (no or bad token), 403 (not allowed, bad signature), 404 (not
# there / not yours). 400 and 409 from a route that checked the caller first are business
# answers (allowed). Never 5xx.
REFUSED_STATUS = (401, 403, 404)
# A forged or expired OAuth state is answered as an expired link, 400.
REFUSED_AS = {
    ("GET", "/bots/wechat-oa/oauth/callback"): (400,),
    ("GET", "/bots/wecom/oauth/callback"): (400,),
}


@pytest.mark.parametrize("key", _route_params())
async def test_route(key: tuple[str, str], demo: Services, services: Services) -> None:
    # From another host than the server's own (loopback reads /metrics without a token).
    app = create_app(services.settings, services=services)
    transport = httpx.ASGITransport(app=app, client=("10.20.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        world = await build_world(demo, http, records=False)
        await prepare_routes(world)
        allowed = ROUTES[key]
        wrong = []
        for role in ROLES:
            request = route_request(key, world, role)
            token = world.clients[role].token
            headers = dict(request.pop("headers", {}))
            if token:
                headers["authorization"] = f"Bearer {token}"
            response = await http.request(**request, headers=headers)
            status = response.status_code
            if status >= 500:
                wrong.append(f"{role}: HTTP {status}")
            elif (
                role in allowed
                and status in REFUSED_STATUS
                and not (
                    # allowed to ask, but the record or link does not exist (or, for
                    # WeCom's OAuth, the platform is not set up in this app; the signed-in
                    # round trip is tests/browser/test_platform_signin.py)
                    key[1] in ("/n/{notice_id}", "/assets", "/bots/wecom/oauth") and status == 404
                )
            ):
                wrong.append(f"{role} should be allowed, got {status} {response.text[:120]}")
            elif role not in allowed and status not in REFUSED_STATUS + REFUSED_AS.get(key, ()):
                wrong.append(f"{role} should be refused, got {status} {response.text[:120]}")
    assert wrong == [], f"{key}:\n" + "\n".join(wrong)


# ---------------------------------------------------------------------------------------
# The PADs' sync path: a pushed mutation is judged like the GraphQL call it stands for.
@dataclass(frozen=True)
class SyncCase:
    what: str
    mutation: Callable[[World], dict[str, Any]]  # name and args of one pushed mutation
    allowed: frozenset[str]
    roles: tuple[str, ...]


SYNC_CASES = [
    SyncCase(
        "checkIn of patient.zhou's (rehabilitation) appointment",
        lambda w: {"name": "checkIn", "args": {"appointmentId": int(w["zhou_appointment"])}},
        frozenset({SUN}),
        roles=(LI, WANG, ZHAO, CHEN, SUN),
    ),
    SyncCase(
        "startTreatment of patient.zhou's (rehabilitation) appointment",
        lambda w: {
            "name": "startTreatment",
            "args": {"appointmentId": int(w["zhou_appointment"])},
        },
        frozenset({SUN}),
        roles=(LI, WANG, ZHAO, CHEN, SUN),
    ),
    SyncCase(
        # the record is not complete: the therapist is told VALIDATION, the others NOT_FOUND
        "archiveTreatment of patient.zhou's (rehabilitation) appointment",
        lambda w: {
            "name": "archiveTreatment",
            "args": {"appointmentId": int(w["zhou_appointment"])},
        },
        frozenset({SUN}),
        roles=(LI, WANG, ZHAO, CHEN, SUN),
    ),
    SyncCase(
        "removePhoto from patient.zhou's (rehabilitation) treatment record",
        lambda w: {
            "name": "removePhoto",
            "args": {"appointmentId": int(w["zhou_appointment"]), "photoSha256": "a" * 64},
        },
        frozenset({SUN}),
        roles=(LI, WANG, ZHAO, CHEN, SUN),
    ),
    SyncCase(
        "updatePatient allergies of rehabilitation's P0005",
        lambda w: {
            "name": "updatePatient",
            "args": {"patientId": int(w["P0005"]), "changes": {"allergies": ["青霉素"]}},
        },
        frozenset({ADMIN, SUN, HE}),
        roles=(LI, WANG, ADMIN, SUN, HE),
    ),
]
PUSH = """mutation($i: SyncPushInput!) { syncPush(input: $i) { results { id status code } } }"""


@pytest.mark.parametrize("case", [pytest.param(c, id=c.what) for c in SYNC_CASES])
async def test_sync_push(case: SyncCase, demo: Services, http: httpx.AsyncClient) -> None:
    world = await build_world(demo, http, records=True)
    wrong = []
    for role in sorted(case.roles, key=lambda r: r in case.allowed):
        mutation = {"id": 1, **case.mutation(world)}
        body = await world.clients[role].execute(
            PUSH,
            {
                "i": {
                    "clientGroupId": f"pad-{role}",
                    "clientId": f"pad-{role}-1",
                    "schemaVersion": 2,
                    "mutations": [mutation],
                }
            },
        )
        assert not body.get("errors"), body
        (result,) = body["data"]["syncPush"]["results"]
        refused = result["status"] == "REJECTED" and result["code"] in REFUSALS
        if result["code"] == "INTERNAL":
            wrong.append(f"{role}: INTERNAL")
        elif role in case.allowed and refused:
            wrong.append(f"{role} should be allowed, was refused: {result}")
        elif role not in case.allowed and not refused:
            wrong.append(f"{role} should be refused, was allowed: {result}")
    assert wrong == [], f"{case.what}:\n" + "\n".join(wrong)


# ---------------------------------------------------------------------------------------
# The card path: a DingTalk card tap decides only for the task's assignee.
async def test_card_taps(bots: Services, bot_http: httpx.AsyncClient, platform_sim: Any) -> None:
    from bots import cards
    from tests.bots.helpers import (
        assert_dingtalk_success,
        card_of,
        dingtalk_tap,
        start_grade4,
        task_statuses,
    )

    instance_id = await start_grade4(bots)
    await cards.sweep(bots)
    head_card = await card_of(bots, instance_id, WANG)
    allowed = frozenset({WANG})  # the head of general surgery holds the first step
    # Each staff member's DingTalk id is their username (demo); the patient has none.
    for role in sorted(STAFF, key=lambda r: r in allowed):
        assert_dingtalk_success(await dingtalk_tap(bot_http, head_card.card_key, role))
        statuses = await task_statuses(bots, instance_id)
        if role in allowed:
            assert statuses[0] == ("head", "approved"), role
        else:
            assert statuses == [("head", "pending")], f"{role}'s tap decided: {statuses}"
