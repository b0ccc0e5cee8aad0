"""Per-request GraphQL limits that depend on settings: cost, introspection, allow-list.

Depth, alias and token limits are fixed in the schema (api/graphql/schema.py); the ones
here read the app's settings from the request context, so one process-wide schema serves
a development app (introspection on) and a production one (off) alike.

Cost: every field costs 1 and a list field multiplies the cost of what it selects by
its `first`/`limit` argument, or `graphql_list_cost` when the query does not bound it.
A query asking for tasks -> history -> actors -> tasks ... is refused before it runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    get_named_type,
)
from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import SchemaExtension

BOUNDING_ARGUMENTS = ("first", "last", "limit")


def _is_list(type_: Any) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


def _bound(node: FieldNode, variables: dict[str, Any]) -> int | None:
    for argument in node.arguments or ():
        if argument.name.value in BOUNDING_ARGUMENTS:
            value = argument.value
            if isinstance(value, IntValueNode):
                return int(value.value)
            name = getattr(getattr(value, "name", None), "value", None)
            if name is not None and isinstance(variables.get(name), int):
                return int(variables[name])
    return None


def selection_cost(
    schema: GraphQLSchema,
    parent: Any,
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    *,
    list_cost: int,
    variables: dict[str, Any],
    seen: frozenset[str] = frozenset(),
) -> int:
    if selection_set is None:
        return 0
    total = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            name = selection.name.value
            if name.startswith("__") or not isinstance(
                parent, GraphQLObjectType | GraphQLInterfaceType
            ):
                continue
            definition = parent.fields.get(name)
            if definition is None:
                continue  # unknown fields are the validator's business
            inner = selection_cost(
                schema,
                get_named_type(definition.type),
                selection.selection_set,
                fragments,
                list_cost=list_cost,
                variables=variables,
                seen=seen,
            )
            multiplier = (
                (_bound(selection, variables) or list_cost) if _is_list(definition.type) else 1
            )
            total += 1 + max(multiplier, 0) * inner
        elif isinstance(selection, InlineFragmentNode):
            condition = (
                schema.get_type(selection.type_condition.name.value)
                if selection.type_condition
                else parent
            )
            total += selection_cost(
                schema,
                condition,
                selection.selection_set,
                fragments,
                list_cost=list_cost,
                variables=variables,
                seen=seen,
            )
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = fragments.get(name)
            if fragment is None or name in seen:
                continue  # cycles and unknown fragments are validation errors anyway
            condition = schema.get_type(fragment.type_condition.name.value)
            total += selection_cost(
                schema,
                condition,
                fragment.selection_set,
                fragments,
                list_cost=list_cost,
                variables=variables,
                seen=seen | {name},
            )
    return total


@lru_cache(maxsize=256)
def _cost_limit_rule(
    max_cost: int, list_cost: int, int_variables: tuple[tuple[str, int], ...]
) -> type[ValidationRule]:
    variables = dict(int_variables)

    class CostLimit(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            schema = self.context.schema
            root = schema.get_root_type(node.operation)
            fragments = {
                d.name.value: d
                for d in self.context.document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            cost = selection_cost(
                schema,
                root,
                node.selection_set,
                fragments,
                list_cost=list_cost,
                variables=variables,
            )
            if cost > max_cost:
                self.report_error(
                    GraphQLError(
                        f"查询过于复杂（成本 {cost}，上限 {max_cost}）/ query too complex (cost {cost}, limit {max_cost})",
                        node,
                        extensions={"code": "QUERY_TOO_COMPLEX", "cost": cost, "limit": max_cost},
                    )
                )

    return CostLimit


def cost_limit_rule(
    max_cost: int, list_cost: int, variables: dict[str, Any]
) -> type[ValidationRule]:
    """The cost rule for these limits and variables. Only integer variables can bound a
    list (`first: $n`), so the rule class is shared by every request whose integer
    variables are equal: the validation cache (keyed by the rule classes) then serves the
    same document again without validating it again."""
    ints = tuple(sorted((k, v) for k, v in variables.items() if isinstance(v, int)))
    return _cost_limit_rule(max_cost, list_cost, ints)


def query_hash(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()


@lru_cache(maxsize=8)
def _allowed_hashes(path: str, mtime: float) -> frozenset[str]:
    data = json.loads(Path(path).read_text())
    # A list of hashes, or an object keyed by hash (hash -> query text) as build tools emit.
    return frozenset(str(h).lower() for h in (data.keys() if isinstance(data, dict) else data))


def allowed_hashes(path: Path) -> frozenset[str]:
    return _allowed_hashes(str(path), path.stat().st_mtime)


class AllowListedQueries(ValidationRule):
    def enter_document(self, node: Any, *_: Any) -> None:
        self.report_error(
            GraphQLError(
                "查询不在允许列表中 / query not in the allow-list",
                extensions={"code": "QUERY_NOT_ALLOWED"},
            )
        )


class _Accepted(ValidationRule):
    pass


def allow_list_rule(query: str, allowed: frozenset[str]) -> type[ValidationRule]:
    """A rule that refuses the document unless its hash is allowed (two fixed classes, so
    validation results stay cacheable)."""
    return _Accepted if query_hash(query) in allowed else AllowListedQueries


def unstorable_text(value: Any) -> bool:
    """A NUL character or a lone UTF-16 surrogate: PostgreSQL cannot store either (and no
    keyboard types them), so they are refused as input instead of failing in the database."""
    if isinstance(value, str):
        return "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(unstorable_text(k) or unstorable_text(v) for k, v in value.items())
    if isinstance(value, list):
        return any(unstorable_text(v) for v in value)
    return False


UNSTORABLE_MESSAGE = "含有无法保存的字符（NUL 或孤立代理项）/ contains characters that cannot be stored (NUL or a lone surrogate)"


class UnstorableLiteral(ValidationRule):
    """The same refusal for string literals written into the document itself."""

    def enter_string_value(self, node: Any, *_: Any) -> None:
        if unstorable_text(node.value):
            self.report_error(
                GraphQLError(
                    UNSTORABLE_MESSAGE, node, extensions={"code": "VALIDATION", "field": "query"}
                )
            )


@lru_cache(maxsize=256)
def unstorable_variable_rule(name: str) -> type[ValidationRule]:
    """A rule refusing the document because variable `name` holds unstorable text (one
    class per variable name, so validation stays cacheable)."""

    class UnstorableVariable(ValidationRule):
        def enter_document(self, node: Any, *_: Any) -> None:
            self.report_error(
                GraphQLError(
                    f"{UNSTORABLE_MESSAGE}: ${name}",
                    extensions={"code": "VALIDATION", "field": name},
                )
            )

    return UnstorableVariable


class RequestPolicy(SchemaExtension):
    """Adds the settings-dependent validation rules to each operation."""

    def on_operation(self) -> Iterator[None]:
        ctx = self.execution_context
        settings = getattr(ctx.context, "settings", None)
        if settings is not None:
            rules: list[type[Any]] = [
                cost_limit_rule(
                    settings.graphql_max_cost, settings.graphql_list_cost, ctx.variables or {}
                )
            ]
            introspection = settings.graphql_introspection
            if introspection is False or (introspection is None and settings.is_production):
                rules.append(NoSchemaIntrospectionCustomRule)
            if settings.graphql_allowed_queries_file is not None:
                rules.append(
                    allow_list_rule(
                        ctx.query or "", allowed_hashes(settings.graphql_allowed_queries_file)
                    )
                )
            rules.append(UnstorableLiteral)
            for name, value in (ctx.variables or {}).items():
                if unstorable_text(value):
                    rules.append(unstorable_variable_rule(str(name)[:64]))
                    break
            ctx.validation_rules = (*ctx.validation_rules, *rules)
        yield
