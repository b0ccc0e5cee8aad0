"""Output types built from model rows.

Most types show a row's columns under the same names; `from_row` copies those (ids as
GraphQL IDs) so a type's `from_row` names only what it renames, derives or defaults.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

import strawberry
from strawberry.types.base import StrawberryOptional

T = TypeVar("T")
_COPY, _ID, _ROW = "copy", "id", "row"
# type -> (field name, how to fill it), worked out once per type (lists build many).
_PLANS: dict[type, list[tuple[str, str]]] = {}


def from_row(cls: type[T], row: Any, **computed: Any) -> T:
    """`cls` from `row`: every plain field the row has under the same name (`row` itself
    for a private `row` field), overridden by `computed`. Fields with resolvers are left
    to their resolvers."""
    values = dict(computed)
    for name, how in _PLANS.get(cls) or _plan(cls):
        if name in values:
            continue
        if how == _ROW:
            values[name] = row
        elif how == _ID:
            value = getattr(row, name)
            values[name] = strawberry.ID(str(value)) if value is not None else None
        else:
            values[name] = getattr(row, name)
    return cls(**values)


def _plan(cls: type) -> list[tuple[str, str]]:
    declared = {f.python_name: f for f in cls.__strawberry_definition__.fields}  # type: ignore[attr-defined]
    plan: list[tuple[str, str]] = []
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        found = declared.get(field.name)
        if not field.init or (found is not None and found.base_resolver is not None):
            continue
        if field.name == "row":
            plan.append((field.name, _ROW))
            continue
        kind = found.type if found is not None else None
        if isinstance(kind, StrawberryOptional):
            kind = kind.of_type
        plan.append((field.name, _ID if kind is strawberry.ID else _COPY))
    _PLANS[cls] = plan
    return plan
