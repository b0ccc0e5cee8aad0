"""The schema: one Query and one Mutation merged from each area's package.

Each area is a package `api/graphql/<area>/` with a `schema` module defining `Query`
and/or `Mutation`; they are found here, so adding an area touches no shared file.
"""

from __future__ import annotations

import pkgutil
from importlib import import_module
from types import ModuleType

import strawberry
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types

import api.graphql
from api.graphql.errors import MaskUnexpectedErrors, log_graphql_errors
from api.graphql.limits import RequestPolicy
from api.graphql.scalars import SCALAR_OVERRIDES


def area_modules() -> list[ModuleType]:
    modules = []
    for info in sorted(pkgutil.iter_modules(api.graphql.__path__), key=lambda i: i.name):
        if info.ispkg:
            try:
                modules.append(import_module(f"api.graphql.{info.name}.schema"))
            except ModuleNotFoundError as exc:
                if exc.name != f"api.graphql.{info.name}.schema":
                    raise
    return modules


AREAS = area_modules()
Query = merge_types("Query", tuple(area.Query for area in AREAS if hasattr(area, "Query")))
Mutation = merge_types(
    "Mutation", tuple(area.Mutation for area in AREAS if hasattr(area, "Mutation"))
)


class BedsideSchema(strawberry.Schema):
    def process_errors(self, errors, execution_context=None):  # type: ignore[no-untyped-def, override]
        # strawberry's default logs every error's message (which can quote patient input)
        # with a traceback, expected DomainErrors included.
        log_graphql_errors(errors)


# The fixed limits' validation rules, built once. Strawberry's limiters make a new rule
# class each time one is constructed, and ValidationCache is keyed by the rule classes: a
# limiter built per request would miss the cache on every request.
VALIDATION_CACHE_SIZE = 256
FIXED_RULES = (
    *QueryDepthLimiter(max_depth=12).validation_rules,
    *MaxAliasesLimiter(max_alias_count=30).validation_rules,
)


def build_schema() -> strawberry.Schema:
    return BedsideSchema(
        query=Query,
        mutation=Mutation,
        config=StrawberryConfig(auto_camel_case=True),
        scalar_overrides=SCALAR_OVERRIDES,  # DateTime needs a time; years 1900-2200
        # Factories, not instances: strawberry points an extension at the request it is
        # running for, so one instance shared by concurrent requests would read another
        # request's result (and mask the wrong errors) after an await.
        extensions=[
            # Parsing and validating a document costs more than most resolvers; the PWA
            # sends the same few documents again and again. Bounded LRU caches, shared
            # by every request of the process.
            lambda: ParserCache(maxsize=256),
            lambda: ValidationCache(maxsize=VALIDATION_CACHE_SIZE),
            lambda: AddValidationRules(list(FIXED_RULES)),  # depth 12, 30 aliases
            lambda: MaxTokensLimiter(max_token_count=4000),
            RequestPolicy,  # cost limit, introspection off in production, allow-list
            MaskUnexpectedErrors,
        ],
    )


schema = build_schema()
