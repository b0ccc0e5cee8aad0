"""Login, me, token revocation and lockout through GraphQL."""

from __future__ import annotations

from tests.conftest import GraphQLClient, error_code

ME = "{ me { id username displayName roles department { id name } } }"


async def test_login_and_me(gql: GraphQLClient) -> None:
    li = await gql.as_user("dr.li")
    me = (await li.data(ME))["me"]
    assert me["username"] == "dr.li"
    assert "surgeon" in me["roles"]
    assert me["department"]["name"] == "普外科"


async def test_me_requires_login(gql: GraphQLClient) -> None:
    error = await gql.error(ME)
    assert error_code(error) == "UNAUTHENTICATED"


async def test_bad_token_is_unauthenticated(gql: GraphQLClient) -> None:
    error = (await gql.execute(ME, token="not-a-token"))["errors"][0]
    assert error_code(error) == "UNAUTHENTICATED"


async def test_wrong_password_then_lockout(gql: GraphQLClient) -> None:
    query = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }"
    for _ in range(5):
        error = await gql.error(query, {"u": "dr.li", "p": "wrong"})
        assert error_code(error) == "UNAUTHENTICATED"
    # Locked now: even the right password is refused until the lockout ends.
    error = await gql.error(query, {"u": "dr.li", "p": "bedside-demo"})
    assert error_code(error) == "ACCOUNT_LOCKED"


async def test_logout_everywhere_revokes_tokens(gql: GraphQLClient) -> None:
    li = await gql.as_user("dr.li")
    assert (await li.data("mutation { logoutEverywhere }"))["logoutEverywhere"] is True
    error = await li.error(ME)
    assert error_code(error) == "UNAUTHENTICATED"


async def test_malformed_document_has_validation_code(gql: GraphQLClient) -> None:
    li = await gql.as_user("dr.li")
    error = await li.error("{ me { noSuchField } }")
    assert error_code(error) == "VALIDATION"
