"""Inputs no form produces (NUL, lone surrogates, 100,000-deep JSON, dates beyond any
record, keys longer than their column, ids of nothing) are the caller's input errors:
a coded 400 or a VALIDATION / NOT_FOUND error naming the field, never HTTP 500 and never
a masked INTERNAL error. And none of them writes anything."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from api.models.patients import Patient
from api.models.treatments import Schedule, ScheduleException
from api.services import Services
from tests.conftest import GraphQLClient, error_code

DEEP = 100_000


def _deep_json() -> bytes:
    return ("[" * DEEP + "]" * DEEP).encode()


def _deep_object() -> bytes:
    return ('{"a":' * DEEP + "1" + "}" * DEEP).encode()


@pytest.mark.parametrize("body", [_deep_json(), _deep_object()], ids=["array", "object"])
async def test_deeply_nested_json_to_graphql_is_a_coded_400(
    http: httpx.AsyncClient, demo: Services, body: bytes
) -> None:
    response = await http.post(
        "/graphql", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text[:200]
    assert response.json()["errors"][0]["extensions"]["code"] == "VALIDATION"


# Every bot endpoint that reads a JSON body, unauthenticated. The DingTalk callback parses
# its body after the timestamp check (DingTalk sends milliseconds), so a fresh one is sent.
BOT_BODIES = [
    "/bots/dingtalk/login",
    "/bots/wecom/login",
    "/bots/wechat-oa/bind",
    "/bots/dingtalk/callback?timestamp={ms}&nonce=n1&signature=x",
]


@pytest.mark.parametrize("path", BOT_BODIES)
async def test_deeply_nested_json_to_bot_endpoints_is_a_coded_400(
    http: httpx.AsyncClient, demo: Services, path: str
) -> None:
    url = path.format(ms=int(time.time() * 1000))
    response = await http.post(
        url, content=_deep_json(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text[:200]
    assert response.json()["error"]["code"] == "VALIDATION"


async def _errors(client: GraphQLClient, query: str, variables: dict[str, Any]) -> list[dict]:
    # json.dumps escapes a lone surrogate as \\ud800, as a client's JSON encoder would.
    response = await client.http.post(
        "/graphql",
        content=json.dumps({"query": query, "variables": variables}),
        headers={"content-type": "application/json", "authorization": f"Bearer {client.token}"},
    )
    assert response.status_code == 200, response.text
    return response.json().get("errors") or []


SEARCH = "query($s: String) { patients(search: $s) { id } }"
ALLERGIES = (
    "mutation($p: ID!, $a: [String!]!) { setPatientAllergies(patientId: $p, allergies: $a) { id } }"
)


@pytest.mark.parametrize(
    "text", ["周\x00建国", "\ud800", "x\udfffy"], ids=["nul", "lone-high", "lone-low"]
)
async def test_unstorable_text_is_a_validation_error_naming_the_variable(
    gql: GraphQLClient, demo: Services, text: str
) -> None:
    staff = await gql.as_user("pt.sun")
    before = await _allergies(demo)
    # json.dumps writes lone surrogates as \\ud800 escapes, as a client would send them.
    for query, variables, field in (
        (SEARCH, {"s": text}, "s"),
        (ALLERGIES, {"p": "1", "a": ["青霉素", text]}, "a"),
    ):
        errors = await _errors(staff, query, variables)
        assert errors, query
        assert error_code(errors[0]) == "VALIDATION", errors
        assert errors[0]["extensions"]["field"] == field
    # Written into the document itself, too.
    literal = json.dumps(text)  # a GraphQL string literal is a JSON string
    errors = await _errors(staff, "{ patients(search: " + literal + ") { id } }", {})
    assert error_code(errors[0]) == "VALIDATION" and errors[0]["extensions"]["field"] == "query"
    assert await _allergies(demo) == before


async def _allergies(demo: Services) -> list[Any]:
    async with demo.db.session() as session:
        return list((await session.execute(sa.select(Patient.id, Patient.allergies))).all())


BAD_DATETIMES = [
    "2026-01-05",  # a date alone: midnight of which time zone?
    "9999-12-31T23:59:59-12:00",  # leaves the calendar in UTC
    "0001-01-01T00:00:00+14:00",
    "1000-01-01T09:00:00+08:00",
    "3000-01-01T09:00:00+08:00",
]


@pytest.mark.parametrize("value", BAD_DATETIMES)
async def test_extreme_or_date_only_datetimes_are_validation_errors(
    gql: GraphQLClient, value: str
) -> None:
    vp = await gql.as_user("vp.chen")
    errors = await _errors(
        vp,
        "query($s: DateTime!, $u: DateTime!) { approvalMetrics(since: $s, until: $u) { overdueCount } }",
        {"s": value, "u": "2026-01-06T00:00:00+08:00"},
    )
    assert error_code(errors[0]) == "VALIDATION", errors
    assert errors[0]["extensions"]["field"] == "s"


@pytest.mark.parametrize("value", ["0001-01-01", "9999-12-31"])
async def test_extreme_dates_are_validation_errors(gql: GraphQLClient, value: str) -> None:
    patient = await gql.as_user("patient.zhou")
    errors = await _errors(
        patient,
        'query($f: Date!, $t: Date!) { availableSlots(itemCode: "PHYSIO", from: $f, to: $t) { id } }',
        {"f": value, "t": value},
    )
    assert error_code(errors[0]) == "VALIDATION", errors
    assert errors[0]["extensions"]["field"] == "f"


async def test_an_over_long_idempotency_key_is_a_validation_error(
    gql: GraphQLClient, demo: Services
) -> None:
    patient = await gql.as_user("patient.zhou")
    today = datetime.now(demo.settings.tz).date()
    slot = (
        await patient.data(
            'query($f: Date!, $t: Date!) { availableSlots(itemCode: "PHYSIO", from: $f, to: $t) { id } }',
            {"f": str(today), "t": str(today + timedelta(days=13))},
        )
    )["availableSlots"][0]["id"]
    async with demo.db.session() as session:
        before = (await session.execute(sa.text("SELECT count(*) FROM appointment"))).scalar_one()
    errors = await _errors(
        patient,
        "mutation($s: ID!, $k: String) { bookAppointment(slotId: $s, idempotencyKey: $k) { id } }",
        {"s": slot, "k": "k" * 5000},
    )
    assert error_code(errors[0]) == "VALIDATION", errors
    assert errors[0]["extensions"]["field"] == "idempotencyKey"
    async with demo.db.session() as session:
        after = (await session.execute(sa.text("SELECT count(*) FROM appointment"))).scalar_one()
    assert after == before


async def test_unknown_schedule_and_therapist_ids_are_not_found(
    gql: GraphQLClient, demo: Services
) -> None:
    head = await gql.as_user("chief.he")
    exception = (
        "mutation($d: Date!, $s: ID, $t: ID) "
        '{ addScheduleException(day: $d, reason: "培训", scheduleId: $s, therapistId: $t) }'
    )
    schedule = (
        'mutation($t: ID) { createTreatmentSchedule(input: {itemCode: "PHYSIO", startTime: "08:00", '
        'endTime: "09:00", validFrom: "2026-01-05", therapistId: $t}) { scheduleId } }'
    )
    async with demo.db.session() as session:
        schedules_before = (
            await session.execute(sa.select(sa.func.count(Schedule.id)))
        ).scalar_one()
        exceptions_before = (
            await session.execute(sa.select(sa.func.count(ScheduleException.id)))
        ).scalar_one()
    for query, variables, field in (
        (exception, {"d": "2026-01-05", "s": "999999"}, "scheduleId"),
        (exception, {"d": "2026-01-05", "t": "999999"}, "therapistId"),
        (schedule, {"t": "999999"}, "therapistId"),
    ):
        errors = await _errors(head, query, variables)
        assert errors and error_code(errors[0]) in ("NOT_FOUND", "VALIDATION"), errors
        assert errors[0]["extensions"].get("field") == field, errors
    async with demo.db.session() as session:
        assert (await session.execute(sa.select(sa.func.count(Schedule.id)))).scalar_one() == (
            schedules_before
        )
        assert (
            await session.execute(sa.select(sa.func.count(ScheduleException.id)))
        ).scalar_one() == exceptions_before
