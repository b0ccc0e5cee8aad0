"""What the server gives away without being asked: which usernames exist (by time or by
lockout), unthrottled password guesses through changePassword, cacheable patient data,
framing by any Tencent page, open metrics, and the schema through "Did you mean".

Time is not measured here (tests/ must not time things): that an unknown username costs
a password check like a real one is shown by counting the argon2 verifications a real
login over HTTP asks for; bench/login_timing.py measures the times themselves."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import argon2
import httpx
import pytest
import sqlalchemy as sa

from api.app import create_app
from api.models.people import User
from api.services import Services
from tests.conftest import DEMO_PASSWORD, GraphQLClient, error_code

LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }"
CHANGE = (
    "mutation($c: String!, $n: String!) "
    "{ changePassword(currentPassword: $c, newPassword: $n) { token } }"
)


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every argon2 verification the server runs (the real one runs; it is only counted)."""
    seen: list[str] = []
    real = argon2.PasswordHasher.verify

    def counting(self: argon2.PasswordHasher, hash: str | bytes, password: str | bytes) -> Any:
        seen.append(str(password))
        return real(self, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", counting)
    yield seen


def _client(services: Services, address: str) -> httpx.AsyncClient:
    app = create_app(services.settings, services=services)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 40000)),
        base_url="http://testserver",
    )


async def _login(http: httpx.AsyncClient, username: str, password: str) -> dict[str, Any]:
    response = await http.post(
        "/graphql", json={"query": LOGIN, "variables": {"u": username, "p": password}}
    )
    return response.json()


async def test_an_unknown_username_costs_the_same_password_check_as_a_real_one(
    demo: Services, verifications: list[str]
) -> None:
    async with _client(demo, "10.1.0.1") as http:
        real = await _login(http, "dr.li", "wrong-for-real")
        assert verifications == ["wrong-for-real"]
        unknown = await _login(http, "dr.nobody", "wrong-for-unknown")
        assert verifications == ["wrong-for-real", "wrong-for-unknown"]
    assert real["errors"][0]["message"] == unknown["errors"][0]["message"]
    assert error_code(real["errors"][0]) == error_code(unknown["errors"][0]) == "UNAUTHENTICATED"


async def test_an_unknown_username_is_locked_like_a_real_one(demo: Services) -> None:
    async with _client(demo, "10.1.0.2") as http:
        answers: dict[str, list[str | None]] = {}
        for username in ("dr.li", "dr.nobody"):
            answers[username] = [
                error_code((await _login(http, username, "wrong"))["errors"][0])
                for _ in range(demo.settings.login_max_failures + 1)
            ]
    expected = ["UNAUTHENTICATED"] * demo.settings.login_max_failures + ["ACCOUNT_LOCKED"]
    assert answers == {"dr.li": expected, "dr.nobody": expected}
    async with demo.db.session() as session:
        # No account was created for the unknown name; the real one is locked.
        assert (
            await session.execute(sa.select(User).where(User.username == "dr.nobody"))
        ).first() is None
        locked = (
            await session.execute(sa.select(User.locked_until).where(User.username == "dr.li"))
        ).scalar_one()
    assert locked is not None


async def test_change_password_guesses_are_throttled_like_logins(
    demo: Services, verifications: list[str]
) -> None:
    async with _client(demo, "10.1.0.3") as http:
        token = (await _login(http, "dr.li", DEMO_PASSWORD))["data"]["login"]["token"]
        client = GraphQLClient(http, token)
        async with demo.db.session() as session:
            hash_before = (
                await session.execute(sa.select(User.password_hash).where(User.username == "dr.li"))
            ).scalar_one()
        for guess in range(demo.settings.login_max_failures):
            error = await client.error(CHANGE, {"c": f"guess-{guess}", "n": "Neue-Passw0rt!"})
            assert error_code(error) == "VALIDATION" and error["extensions"]["field"] == (
                "currentPassword"
            )
        checked = len(verifications)
        # The right password now: the account is locked, and no password is checked.
        locked = await client.error(CHANGE, {"c": DEMO_PASSWORD, "n": "Neue-Passw0rt!"})
        assert error_code(locked) == "ACCOUNT_LOCKED"
        assert len(verifications) == checked
        # Signing in is locked as well: the guesses counted against the account.
        again = await _login(http, "dr.li", DEMO_PASSWORD)
        assert error_code(again["errors"][0]) == "ACCOUNT_LOCKED"
    async with demo.db.session() as session:
        hash_after = (
            await session.execute(sa.select(User.password_hash).where(User.username == "dr.li"))
        ).scalar_one()
    assert hash_after == hash_before


async def test_responses_with_patient_data_are_not_stored(
    gql: GraphQLClient, http: httpx.AsyncClient
) -> None:
    staff = await gql.as_user("pt.sun")
    response = await http.post(
        "/graphql",
        json={"query": "{ patients { id name } }"},
        headers={"authorization": f"Bearer {staff.token}"},
    )
    assert response.json()["data"]["patients"]
    assert response.headers["cache-control"] == "no-store"
    for path in ("/fhir/Patient/1", "/fhir/$export?patient=1"):
        fhir = await http.get(path, headers={"authorization": f"Bearer {staff.token}"})
        assert fhir.headers["cache-control"] == "no-store", path
    upload = await http.post("/attachments", headers={"authorization": f"Bearer {staff.token}"})
    assert upload.headers["cache-control"] == "no-store"
    # An error (anonymous) is not cached either.
    anonymous = await http.post("/graphql", json={"query": "{ patients { id } }"})
    assert anonymous.headers["cache-control"] == "no-store"


async def test_only_the_platforms_that_embed_the_app_may_frame_it(http: httpx.AsyncClient) -> None:
    csp = (await http.get("/healthz")).headers["content-security-policy"]
    ancestors = next(p for p in csp.split(";") if p.strip().startswith("frame-ancestors"))
    sources = ancestors.split()[1:]
    assert sources == [
        "'self'",
        "https://*.dingtalk.com",
        "https://work.weixin.qq.com",
        "https://mp.weixin.qq.com",
    ]
    assert not any(s.endswith("*.qq.com") for s in sources)


async def test_metrics_need_the_token_when_one_is_set(services: Services) -> None:
    settings = services.settings.model_copy(update={"metrics_token": "scrape-secret-123"})
    app = create_app(settings, services=Services.build(settings, db=services.db))
    for address in ("127.0.0.1", "10.2.0.1"):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 40000)),
            base_url="http://testserver",
        ) as http:
            assert (await http.get("/metrics")).status_code == 403
            wrong = await http.get("/metrics", headers={"authorization": "Bearer nope"})
            assert wrong.status_code == 403 and wrong.json()["error"]["code"] == "FORBIDDEN"
            right = await http.get(
                "/metrics", headers={"authorization": "Bearer scrape-secret-123"}
            )
            assert right.status_code == 200 and "bedside_http_requests_total" in right.text


async def test_metrics_without_a_token_answer_loopback_only(services: Services) -> None:
    app = create_app(services.settings, services=services)
    for address, status in (("127.0.0.1", 200), ("::1", 200), ("10.2.0.1", 403)):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=(address, 40000)),
            base_url="http://testserver",
        ) as http:
            assert (await http.get("/metrics")).status_code == status, address


TYPO_QUERIES = [
    "{ patiens { id } }",  # a root field
    "{ me { usernam } }",  # a field of a type
    'mutation { decideTask(taskId: "1", decision: APROVE) { id } }',  # an enum value
    "{ surgeryCatalog(grad: 1) { code } }",  # an argument
]


@pytest.mark.parametrize("query", TYPO_QUERIES)
async def test_production_suggests_nothing(
    services: Services, gql: GraphQLClient, query: str
) -> None:
    development = await gql.execute(query)
    assert "Did you mean" in development["errors"][0]["message"]  # the test's typos are near

    settings = services.settings.model_copy(update={"environment": "production"})
    app = create_app(settings, services=Services.build(settings, db=services.db))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("10.3.0.1", 40000)),
        base_url="http://testserver",
    ) as http:
        anonymous = (await http.post("/graphql", json={"query": query})).json()
        token = (await _login(http, "admin", DEMO_PASSWORD))["data"]["login"]["token"]
        admin = (
            await http.post(
                "/graphql", json={"query": query}, headers={"authorization": f"Bearer {token}"}
            )
        ).json()
    for body in (anonymous, admin):
        assert body["errors"], body
        for error in body["errors"]:
            assert "Did you mean" not in error["message"], error
            assert error_code(error) == "VALIDATION"
