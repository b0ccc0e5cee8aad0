"""GET /api/privilege-check: what 手麻 and the HIS ask before an operation, with a service
token of their own (stored as its SHA-256), every call in the access log."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa

from api.app import create_app
from api.models.audit import AccessLog
from api.services import Services
from tests.conftest import GraphQLClient, make_settings

ANESTHESIA_TOKEN = secrets.token_urlsafe(32)
HIS_TOKEN = secrets.token_urlsafe(32)
PATH = "/api/privilege-check"
AT = "2026-12-03T08:00:00+08:00"


@pytest.fixture
async def checker(demo: Services, database_url, tmp_data_dir) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        database_url,
        tmp_data_dir,
        privilege_check_tokens={
            # Written by hand: the SHA-256 of each system's token, as an operator would.
            "anesthesia": hashlib.sha256(ANESTHESIA_TOKEN.encode()).hexdigest(),
            "his": hashlib.sha256(HIS_TOKEN.encode()).hexdigest(),
        },
    )
    services = Services.build(settings, db=demo.db)
    app = create_app(settings, services=services)
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def _log_rows(services: Services) -> list[AccessLog]:
    async with services.db.session() as session:
        stmt = (
            sa.select(AccessLog)
            .where(AccessLog.resource == "privilegeCheck")
            .order_by(AccessLog.id)
        )
        return list((await session.execute(stmt)).scalars())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_granted_not_granted_and_unknown(checker, demo) -> None:
    # dr.li holds grade 3 (demo): laparoscopic cholecystectomy 51.23 is grade 3, Whipple 52.7 grade 4.
    ok = await checker.get(
        PATH,
        params={"surgeon": "dr.li", "procedure": "51.23", "at": AT},
        headers=bearer(ANESTHESIA_TOKEN),
    )
    assert ok.status_code == 200
    body = ok.json()
    assert body["allowed"] is True and body["status"] == "granted"
    assert body["procedure"] == {"code": "51.23", "name": "腹腔镜胆囊切除术", "grade": 3}
    assert body["surgeon"]["username"] == "dr.li" and body["grantId"]

    no = (
        await checker.get(
            PATH,
            params={"surgeon": "dr.li", "procedure": "52.7", "at": AT},
            headers=bearer(HIS_TOKEN),
        )
    ).json()
    assert no["allowed"] is False and no["status"] == "not_granted"

    nobody = (
        await checker.get(
            PATH,
            params={"surgeon": "dr.nobody", "procedure": "51.23", "at": AT},
            headers=bearer(HIS_TOKEN),
        )
    ).json()
    assert nobody == {**nobody, "allowed": False, "status": "unknown_surgeon", "surgeon": None}
    nothing = (
        await checker.get(
            PATH,
            params={"surgeon": "dr.li", "procedure": "99.999", "at": AT},
            headers=bearer(HIS_TOKEN),
        )
    ).json()
    assert nothing["allowed"] is False and nothing["status"] == "unknown_procedure"

    # Before the demo grants begin (2024-01-01), nothing was held.
    early = (
        await checker.get(
            PATH,
            params={"surgeon": "dr.li", "procedure": "51.23", "at": "2023-06-01T08:00:00+08:00"},
            headers=bearer(HIS_TOKEN),
        )
    ).json()
    assert early["status"] == "not_granted"

    rows = await _log_rows(demo)
    assert [(r.detail["client"], r.detail["outcome"]) for r in rows] == [
        ("anesthesia", "granted"),
        ("his", "not_granted"),
        ("his", "unknown_surgeon"),
        ("his", "unknown_procedure"),
        ("his", "not_granted"),
    ]
    assert all(r.ip == "10.1.2.3" and r.action == "check" for r in rows)


async def test_suspended_and_revoked(checker, gql: GraphQLClient, demo) -> None:
    zhao = await gql.as_user("ma.zhao")
    await zhao.data(
        "mutation($i: SuspendPrivilegeInput!) { suspendPrivilege(input: $i) { id } }",
        {
            "i": {
                "surgeonUsername": "dr.li",
                "reason": "不良事件调查期间",
                "startsAt": "2026-12-01T00:00:00+08:00",
                "endsAt": "2026-12-10T00:00:00+08:00",
            }
        },
    )
    suspended = (
        await checker.get(
            PATH,
            params={"surgeon": "dr.li", "procedure": "51.23", "at": AT},
            headers=bearer(ANESTHESIA_TOKEN),
        )
    ).json()
    assert suspended["allowed"] is False and suspended["status"] == "suspended"
    assert suspended["reason"] == "不良事件调查期间"
    # After the suspension ends, the grant holds again.
    after = (
        await checker.get(
            PATH,
            params={"surgeon": "dr.li", "procedure": "51.23", "at": "2026-12-11T08:00:00+08:00"},
            headers=bearer(ANESTHESIA_TOKEN),
        )
    ).json()
    assert after["status"] == "granted"

    grants = await zhao.data(
        '{ privileges(surgeonUsername: "dr.qian") { grants { id status maxGrade } } }'
    )
    grant = next(g for g in grants["privileges"]["grants"] if g["maxGrade"] == 4)
    await zhao.data(
        'mutation($id: ID!) { revokePrivilege(grantId: $id, reason: "定期考核不合格") { status } }',
        {"id": grant["id"]},
    )
    revoked = (
        await checker.get(
            PATH,
            params={"surgeon": "dr.qian", "procedure": "52.7"},
            headers=bearer(ANESTHESIA_TOKEN),
        )
    ).json()
    assert revoked["allowed"] is False and revoked["status"] == "revoked"
    assert revoked["reason"] == "定期考核不合格"


async def test_refusals_answer_nothing_and_are_logged(checker, gql: GraphQLClient, demo) -> None:
    user_token = (await gql.as_user("dr.li")).token
    question = {"surgeon": "dr.li", "procedure": "51.23", "at": AT}
    for headers in ({}, bearer("not-a-token"), bearer(user_token), bearer(ANESTHESIA_TOKEN + "x")):
        refused = await checker.get(PATH, params=question, headers=headers)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "UNAUTHENTICATED"
        assert "allowed" not in refused.text
    bad = await checker.get(
        PATH,
        params={"surgeon": "dr.li", "procedure": "51.23", "at": "tomorrow"},
        headers=bearer(HIS_TOKEN),
    )
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "at"
    naive = await checker.get(
        PATH, params={**question, "at": "2026-12-03T08:00:00"}, headers=bearer(HIS_TOKEN)
    )
    assert naive.status_code == 400
    missing = await checker.get(PATH, params={"surgeon": "dr.li"}, headers=bearer(HIS_TOKEN))
    assert missing.status_code == 400 and missing.json()["error"]["field"] == "procedure"

    rows = await _log_rows(demo)
    assert [(r.action, r.detail["client"], r.detail["outcome"]) for r in rows] == [
        ("refused", None, "unauthenticated")
    ] * 4 + [("check", "his", "invalid")] * 3


async def test_without_configured_tokens_nobody_may_ask(http: httpx.AsyncClient, gql, demo) -> None:
    admin = await gql.as_user("admin")
    answer = await http.get(
        PATH, params={"surgeon": "dr.li", "procedure": "51.23"}, headers=bearer(str(admin.token))
    )
    assert answer.status_code == 401
