"""The schema: one Query and one Mutation merged from each area's package."""

from __future__ import annotations

import strawberry
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

from api.graphql.errors import MaskUnexpectedErrors
from api.graphql.people import schema as people

# Each area adds its module here, in one line.
AREAS = [people]

Query = merge_types("Query", tuple(area.Query for area in AREAS if hasattr(area, "Query")))
Mutation = merge_types("Mutation", tuple(area.Mutation for area in AREAS if hasattr(area, "Mutation")))


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        config=StrawberryConfig(auto_camel_case=True),
        extensions=[
            QueryDepthLimiter(max_depth=12),
            MaxAliasesLimiter(max_alias_count=30),
            MaxTokensLimiter(max_token_count=4000),
            MaskUnexpectedErrors(),
        ],
    )


schema = build_schema()
