"""Login: lockout per user and per address, revocation, password policy, CORS, cookies,
security headers."""

from __future__ import annotations

import httpx
import sqlalchemy as sa

from api.app import create_app
from api.models.people import User
from api.services import Services
from tests.conftest import DEMO_PASSWORD, GraphQLClient, error_code

LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }"


def _client(services: Services, address: str, **overrides: object) -> httpx.AsyncClient:
    settings = services.settings.model_copy(update=overrides)
    app = create_app(settings, services=Services.build(settings, db=services.db))
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(address, 40000)),
        base_url="http://testserver",
    )


async def _login(http: httpx.AsyncClient, username: str, password: str) -> dict:
    return (
        await http.post(
            "/graphql", json={"query": LOGIN, "variables": {"u": username, "p": password}}
        )
    ).json()


async def test_user_is_locked_after_repeated_failures_even_with_the_right_password(
    demo: Services,
) -> None:
    async with _client(demo, "10.0.0.1") as http:
        for _ in range(demo.settings.login_max_failures):
            assert (
                error_code((await _login(http, "dr.li", "wrong"))["errors"][0]) == "UNAUTHENTICATED"
            )
        locked = await _login(http, "dr.li", DEMO_PASSWORD)
        assert error_code(locked["errors"][0]) == "ACCOUNT_LOCKED"
    # Another account from another address is unaffected.
    async with _client(demo, "10.0.0.2") as other:
        assert (await _login(other, "chief.wang", DEMO_PASSWORD))["data"]["login"]["token"]


async def test_address_is_throttled_across_accounts_and_processes(demo: Services) -> None:
    # Two app instances (two API processes of a fleet) share the count through the database.
    first = _client(demo, "10.0.0.9", login_max_failures_per_address=6)
    second = _client(demo, "10.0.0.9", login_max_failures_per_address=6)
    async with first, second:
        for i in range(6):  # spread over accounts so no single user is locked
            client = first if i % 2 else second
            body = await _login(
                client, ["dr.li", "chief.wang", "ma.zhao", "nobody"][i % 4], "wrong"
            )
            assert error_code(body["errors"][0]) == "UNAUTHENTICATED"
        refused = await _login(first, "vp.chen", DEMO_PASSWORD)
        assert error_code(refused["errors"][0]) == "RATE_LIMITED"
        assert refused["data"] is None
    async with demo.db.session() as session:
        vp = (await session.execute(sa.select(User).where(User.username == "vp.chen"))).scalar_one()
        assert vp.failed_logins == 0  # refused before any password was checked
    async with _client(demo, "10.0.0.10") as elsewhere:
        assert (await _login(elsewhere, "vp.chen", DEMO_PASSWORD))["data"]["login"]["token"]


async def test_logout_revokes_only_that_token(gql: GraphQLClient) -> None:
    phone = await gql.as_user("pt.sun")
    tablet = await gql.as_user("pt.sun")
    assert (await phone.data("mutation { logout }"))["logout"] is True
    assert error_code(await phone.error("{ me { username } }")) == "UNAUTHENTICATED"
    assert (await tablet.data("{ me { username } }"))["me"]["username"] == "pt.sun"


async def test_logout_everywhere_and_expiry(gql: GraphQLClient, demo: Services) -> None:
    one = await gql.as_user("pt.sun")
    two = await gql.as_user("pt.sun")
    await one.data("mutation { logoutEverywhere }")
    assert error_code(await two.error("{ me { username } }")) == "UNAUTHENTICATED"
    async with _client(demo, "10.0.0.3", token_ttl_seconds=-1) as http:
        token = (await _login(http, "pt.sun", DEMO_PASSWORD))["data"]["login"]["token"]
        body = (
            await http.post(
                "/graphql",
                json={"query": "{ me { username } }"},
                headers={"authorization": f"Bearer {token}"},
            )
        ).json()
        assert error_code(body["errors"][0]) == "UNAUTHENTICATED"
        assert "expired" in body["errors"][0]["message"]


CHANGE = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) { token } }"


async def test_password_policy_and_change(gql: GraphQLClient) -> None:
    other_device = await gql.as_user("chief.he")
    client = await gql.as_user("chief.he")
    for weak, reason in (
        ("Sh0rt!", "characters"),
        ("alllowercaseletters", "3 of"),
        ("Chief.He-2026-x", "username"),
    ):
        error = await client.error(CHANGE, {"c": DEMO_PASSWORD, "n": weak})
        assert error_code(error) == "VALIDATION" and error["extensions"]["field"] == "newPassword"
        assert reason in error["message"]
    wrong = await client.error(CHANGE, {"c": "not-it", "n": "Rehab-Ward-2026"})
    assert error_code(wrong) == "VALIDATION" and wrong["extensions"]["field"] == "currentPassword"

    token = (await client.data(CHANGE, {"c": DEMO_PASSWORD, "n": "Rehab-Ward-2026"}))[
        "changePassword"
    ]["token"]
    assert error_code(await other_device.error("{ me { username } }")) == "UNAUTHENTICATED"
    fresh = GraphQLClient(gql.http, token)
    assert (await fresh.data("{ me { username } }"))["me"]["username"] == "chief.he"
    assert (await gql.as_user("chief.he", "Rehab-Ward-2026")).token
    assert (
        error_code(await gql.error(LOGIN, {"u": "chief.he", "p": DEMO_PASSWORD}))
        == "UNAUTHENTICATED"
    )


async def test_cookies_never_authenticate(gql: GraphQLClient, http: httpx.AsyncClient) -> None:
    """CSRF: a browser sends cookies on cross-site requests, so none may carry authority."""
    client = await gql.as_user("admin")
    for name in ("token", "Authorization", "bedside_token", "session"):
        response = await http.post(
            "/graphql", json={"query": "{ me { username } }"}, cookies={name: client.token or ""}
        )
        assert error_code(response.json()["errors"][0]) == "UNAUTHENTICATED"


async def test_cors_allows_only_the_pwa_origin_and_no_credentials(demo: Services) -> None:
    pwa = "https://bedside.hospital.example"
    async with _client(demo, "10.0.0.4", cors_origins=[pwa]) as http:
        preflight = {
            "origin": pwa,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        }
        ok = await http.options("/graphql", headers=preflight)
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == pwa
        assert "access-control-allow-credentials" not in ok.headers
        evil = await http.options(
            "/graphql", headers={**preflight, "origin": "https://evil.example"}
        )
        assert evil.status_code == 400 and "access-control-allow-origin" not in evil.headers
        simple = await http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in simple.headers


async def test_security_headers(demo: Services) -> None:
    async with _client(demo, "10.0.0.5", public_url="https://bedside.hospital.example") as https:
        response = await https.get("/healthz")
        csp = dict(
            part.strip().split(" ", 1)
            for part in response.headers["content-security-policy"].split(";")
        )
        assert (
            "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
        )
        assert csp["object-src"] == "'none'"
        ancestors = csp["frame-ancestors"].split()
        assert "*" not in ancestors and "https:" not in ancestors
        assert any("dingtalk.com" in a for a in ancestors) and any(
            "weixin.qq.com" in a for a in ancestors
        )
        assert "max-age=" in response.headers["strict-transport-security"]
        assert response.headers["x-content-type-options"] == "nosniff"
        graphql = await https.post("/graphql", json={"query": "{ __typename }"})
        assert "content-security-policy" in graphql.headers
    async with _client(demo, "10.0.0.6") as plain:
        assert (
            "strict-transport-security" not in (await plain.get("/healthz")).headers
        )  # no HSTS without TLS
