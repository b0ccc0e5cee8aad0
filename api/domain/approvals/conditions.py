"""Structured conditions (`{field, op, value}`, `{all}`, `{any}`, `{not}`) and localized names,
shared by process definitions and their forms. Nothing is evaluated as code.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

IDENT = r"^[a-z][a-z0-9_]{0,59}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LocalizedName(_Strict):
    zh: str = Field(min_length=1, max_length=100)
    en: str = Field(default="", max_length=100)


# --- conditions ---------------------------------------------------------------------

Op = Literal["==", "!=", ">", ">=", "<", "<=", "in", "not_in", "exists"]


class Compare(_Strict):
    field: str = Field(min_length=1, max_length=60)
    op: Op
    value: Any = None

    def holds(self, data: dict[str, Any]) -> bool:
        present = self.field in data and data[self.field] is not None
        if self.op == "exists":
            return present == (self.value is not False)
        if not present:
            return self.op == "!=" or self.op == "not_in"
        actual = data[self.field]
        try:
            match self.op:
                case "==":
                    return bool(actual == self.value)
                case "!=":
                    return bool(actual != self.value)
                case ">":
                    return bool(actual > self.value)
                case ">=":
                    return bool(actual >= self.value)
                case "<":
                    return bool(actual < self.value)
                case "<=":
                    return bool(actual <= self.value)
                case "in":
                    return actual in self.value
                case "not_in":
                    return actual not in self.value
        except TypeError:
            return False  # "3" >= 3: a mismatched type never satisfies a condition
        return False

    @model_validator(mode="after")
    def _value_fits_op(self) -> Compare:
        if self.op in ("in", "not_in") and not isinstance(self.value, list):
            raise ValueError(f"op {self.op!r} needs a list value")
        return self


class AllOf(_Strict):
    all: list[Condition] = Field(min_length=1)

    def holds(self, data: dict[str, Any]) -> bool:
        return all(c.holds(data) for c in self.all)


class AnyOf(_Strict):
    any: list[Condition] = Field(min_length=1)

    def holds(self, data: dict[str, Any]) -> bool:
        return any(c.holds(data) for c in self.any)


class Not(_Strict):
    not_: Condition = Field(alias="not")

    def holds(self, data: dict[str, Any]) -> bool:
        return not self.not_.holds(data)


def _condition_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        for tag in ("all", "any", "not"):
            if tag in value:
                return tag
        return "compare"
    if isinstance(value, BaseModel):
        tags: dict[type[BaseModel], str] = {AllOf: "all", AnyOf: "any", Not: "not"}
        return tags.get(type(value), "compare")
    return None


Condition = Annotated[
    Annotated[Compare, Tag("compare")]
    | Annotated[AllOf, Tag("all")]
    | Annotated[AnyOf, Tag("any")]
    | Annotated[Not, Tag("not")],
    Discriminator(_condition_tag),
]
AllOf.model_rebuild()
AnyOf.model_rebuild()
Not.model_rebuild()


def holds(condition: Compare | AllOf | AnyOf | Not | None, data: dict[str, Any]) -> bool:
    return True if condition is None else condition.holds(data)
