"""GraphQL and HTTP limits: depth, cost, batching, introspection, allow-list, body size."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from api.app import create_app
from api.graphql.limits import query_hash
from api.services import Services
from tests.conftest import GraphQLClient, error_code

NESTED = "tasks { instance { " * 6 + "id" + " } }" * 6


async def _client_for(services: Services, **overrides: object) -> httpx.AsyncClient:
    settings = services.settings.model_copy(update=overrides)
    app = create_app(settings, services=Services.build(settings, db=services.db))
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=("127.0.0.1", 50001)),
        base_url="http://testserver",
    )


async def test_deep_query_is_refused_before_it_runs(gql: GraphQLClient) -> None:
    client = await gql.as_user("dr.li")
    error = await client.error("{ myTasks { instance { " + NESTED + " } } }")
    assert error_code(error) == "VALIDATION"
    assert "depth" in error["message"]


async def test_costly_query_is_refused_and_a_normal_one_passes(gql: GraphQLClient) -> None:
    client = await gql.as_user("dr.li")
    # Lists within lists: 10 tasks x 10 tasks x 10 tasks x 10 history events ...
    costly = "{ myTasks { instance { tasks { instance { tasks { instance { tasks { instance { history { action } } } } } } } } } }"
    error = await client.error(costly)
    assert error_code(error) == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["cost"] > error["extensions"]["limit"]
    data = await client.data(
        "{ myTasks { id status instance { id kind status history { action } } } }"
    )
    assert data["myTasks"] == [] or isinstance(data["myTasks"], list)


async def test_cost_counts_fragments(gql: GraphQLClient) -> None:
    client = await gql.as_user("dr.li")
    query = """
      fragment Deep on ApprovalInstance { tasks { instance { tasks { instance { tasks { instance { history { action } } } } } } } }
      query { myTasks { instance { ...Deep } } }
    """
    assert error_code(await client.error(query)) == "QUERY_TOO_COMPLEX"


async def test_a_bound_given_as_a_variable_is_costed_per_request(gql: GraphQLClient) -> None:
    # The same document, validated once and cached: the cost still follows each
    # request's own variables.
    client = await gql.as_user("dr.li")
    query = (
        "query($n: Int!) { myNotices(limit: $n) { id title body deliveries { channel status } } }"
    )
    assert isinstance((await client.data(query, {"n": 5}))["myNotices"], list)
    assert error_code(await client.error(query, {"n": 100000})) == "QUERY_TOO_COMPLEX"
    assert isinstance((await client.data(query, {"n": 5}))["myNotices"], list)


async def test_a_repeated_document_is_validated_once(gql: GraphQLClient) -> None:
    from strawberry.extensions.validation_cache import _get_validate_cache

    from api.graphql.schema import VALIDATION_CACHE_SIZE

    client = await gql.as_user("dr.li")
    query = "{ myTasks { id status } __typename }"
    await client.data(query)
    before = _get_validate_cache(VALIDATION_CACHE_SIZE).cache_info()
    for _ in range(3):
        await client.data(query)
    after = _get_validate_cache(VALIDATION_CACHE_SIZE).cache_info()
    assert (after.hits - before.hits, after.misses - before.misses) == (3, 0)


async def test_batched_requests_are_refused(http: httpx.AsyncClient, demo: Services) -> None:
    body = [{"query": "{ __typename }"}] * 50
    response = await http.post("/graphql", json=body)
    assert response.status_code == 400
    assert "batch" in response.text.lower()


async def test_introspection_is_off_in_production_and_on_in_development(demo: Services) -> None:
    query = {"query": "{ __schema { queryType { name } } }"}
    async with await _client_for(demo, environment="production") as prod:
        body = (await prod.post("/graphql", json=query)).json()
        assert body["errors"] and "introspection" in body["errors"][0]["message"].lower()
        assert (await prod.post("/graphql", json={"query": "{ __typename }"})).json() == {
            "data": {"__typename": "Query"}
        }
        assert (
            await prod.get("/graphql", headers={"accept": "text/html"})
        ).status_code != 200  # no GraphiQL page
    async with await _client_for(demo) as dev:
        assert (await dev.post("/graphql", json=query)).json()["data"]["__schema"]["queryType"][
            "name"
        ] == "Query"


async def test_allow_listed_queries_only(demo: Services, tmp_path: Path) -> None:
    login = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }"
    me = "query Me { me { username } }"
    allowed = tmp_path / "allowed-queries.json"
    allowed.write_text(json.dumps({query_hash(login): login, query_hash(me): me}))
    async with await _client_for(demo, graphql_allowed_queries_file=allowed) as client:
        token = (
            await client.post(
                "/graphql", json={"query": login, "variables": {"u": "dr.li", "p": "bedside-demo"}}
            )
        ).json()["data"]["login"]["token"]
        headers = {"authorization": f"Bearer {token}"}
        assert (await client.post("/graphql", json={"query": me}, headers=headers)).json() == {
            "data": {"me": {"username": "dr.li"}}
        }
        refused = (
            await client.post(
                "/graphql", json={"query": "{ me { username roles } }"}, headers=headers
            )
        ).json()
        assert refused["data"] is None and error_code(refused["errors"][0]) == "QUERY_NOT_ALLOWED"


async def test_request_body_limit_except_uploads(demo: Services) -> None:
    async with await _client_for(demo, max_request_bytes=4096) as client:
        big = {"query": "{ __typename }", "variables": {"pad": "x" * 5000}}
        response = await client.post("/graphql", json=big)
        assert response.status_code == 413
        assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"

        async def chunks():  # no Content-Length: counted while streaming
            for _ in range(10):
                yield b" " * 1000

        streamed = await client.post(
            "/graphql", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        assert (await client.post("/graphql", json={"query": "{ __typename }"})).status_code == 200
        # Attachment uploads are not cut by the GraphQL limit (they have their own).
        upload = await client.post(
            "/attachments", files={"file": ("a.png", b"\x89PNG" + b"0" * 6000, "image/png")}
        )
        assert upload.status_code != 413
