"""Build a minimal, well-typed call for every root field of the schema.

Used by the authorization matrix and the fuzz tests: the arguments are valid for the
schema (so graphql-core lets the call reach the permission check and the resolver) but
name nothing in particular (id 1, "x", today).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLUnionType,
    get_named_type,
)
from graphql.pyutils import Undefined

from api.graphql.schema import schema

SCALAR_SAMPLES: dict[str, Any] = {
    "ID": "1",
    "String": "x",
    "Int": 1,
    "Float": 1.0,
    "Boolean": False,
    "DateTime": "2026-01-05T09:00:00+08:00",
    "Date": "2026-01-05",
    "JSON": {},
}


def sample_value(type_: Any) -> Any:
    """A value of `type_` with only the required parts filled in."""
    if isinstance(type_, GraphQLNonNull):
        return sample_value(type_.of_type)
    if isinstance(type_, GraphQLList):
        return [sample_value(type_.of_type)]
    if isinstance(type_, GraphQLEnumType):
        return next(iter(type_.values))
    if isinstance(type_, GraphQLInputObjectType):
        return {
            name: sample_value(field.type)
            for name, field in type_.fields.items()
            if _required(field)
        }
    if isinstance(type_, GraphQLScalarType):
        if type_.name not in SCALAR_SAMPLES:
            raise KeyError(f"no sample for scalar {type_.name}: add one to SCALAR_SAMPLES")
        return SCALAR_SAMPLES[type_.name]
    raise TypeError(f"unexpected input type {type_}")


def _required(field: Any) -> bool:
    return isinstance(field.type, GraphQLNonNull) and field.default_value is Undefined


@dataclass(frozen=True)
class FieldCall:
    operation: str  # "query" | "mutation"
    name: str
    python_name: str
    permission_classes: tuple[type, ...]
    document: str
    variables: dict[str, Any]


def selection_for(field: GraphQLField) -> str:
    named = get_named_type(field.type)
    if isinstance(named, GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType):
        return " { __typename }"
    return ""


def root_field_calls() -> list[FieldCall]:
    calls = []
    graphql_schema = schema._schema
    for operation, strawberry_root, root_type in (
        ("query", schema.query, graphql_schema.query_type),
        ("mutation", schema.mutation, graphql_schema.mutation_type),
    ):
        if root_type is None:
            continue
        definitions = {f.name: f for f in strawberry_root.__strawberry_definition__.fields}
        strawberry_by_graphql_name = {
            schema.config.name_converter.get_graphql_name(f): f for f in definitions.values()
        }
        for name, field in root_type.fields.items():
            strawberry_field = strawberry_by_graphql_name[name]
            variables: dict[str, Any] = {}
            declarations = []
            arguments = []
            for arg_name, arg in field.args.items():
                if not _required(arg):
                    continue
                variables[arg_name] = sample_value(arg.type)
                declarations.append(f"${arg_name}: {arg.type}")
                arguments.append(f"{arg_name}: ${arg_name}")
            header = (
                f"{operation} Call({', '.join(declarations)})"
                if declarations
                else f"{operation} Call"
            )
            call = f"{name}({', '.join(arguments)})" if arguments else name
            calls.append(
                FieldCall(
                    operation=operation,
                    name=name,
                    python_name=strawberry_field.python_name,
                    permission_classes=tuple(strawberry_field.permission_classes),
                    document=f"{header} {{ {call}{selection_for(field)} }}",
                    variables=variables,
                )
            )
    return calls
