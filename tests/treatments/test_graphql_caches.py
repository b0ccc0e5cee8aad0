"""The parser and validation caches keep the document limits: a refused document stays
refused when sent again, an accepted one keeps working."""

from __future__ import annotations

from tests.conftest import GraphQLClient, error_code

DEEP = "{ treatmentItems { code " + "currentConsent { id } " + "} }"


async def test_cached_documents_keep_their_limits(gql: GraphQLClient) -> None:
    sun = await gql.as_user("pt.sun")
    aliases = "{ " + " ".join(f"a{i}: treatmentItems {{ code }}" for i in range(40)) + " }"
    for _ in range(2):
        error = await sun.error(aliases)
        assert error_code(error) == "VALIDATION"
        assert (await sun.data(DEEP))["treatmentItems"]
    bad_field = "{ treatmentItems { nope } }"
    for _ in range(2):
        assert error_code(await sun.error(bad_field)) == "VALIDATION"
