"""Helpers shared by the GraphQL types."""

from __future__ import annotations

import datetime as _dt
from operator import methodcaller

import dateutil.parser
from strawberry.schema.types.base_scalars import wrap_parser
from strawberry.types.scalar import ScalarDefinition

from api.errors import invalid

MAX_ID = 2**31 - 1  # integer primary keys; a bigger number would reach the database as an error


def parse_id(value: object, field: str = "id") -> int:
    """GraphQL IDs are strings; ours are integers. A bad one names the field."""
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        raise invalid(field, f"无效的编号 / invalid id: {field}") from None
    if number <= 0 or number > MAX_ID:
        raise invalid(field, f"无效的编号 / invalid id: {field}")
    return number


# Dates and times a hospital record can hold. Beyond these, arithmetic on them (a day
# later, in UTC) overflows Python's datetime: the caller's input error, not ours.
MIN_YEAR, MAX_YEAR = 1900, 2200


def _in_range(year: int, type_: str) -> None:
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise ValueError(f"{type_} year must be within {MIN_YEAR}-{MAX_YEAR}")


def parse_datetime(value: str) -> _dt.datetime:
    """ISO 8601 with a time ("2026-01-05T09:00", an offset optional): a date alone is not
    a moment (midnight of which time zone?) and is refused, as are years beyond the range."""
    if "T" not in value and " " not in value.strip():
        raise ValueError("a DateTime needs a time, e.g. 2026-01-05T09:00:00+08:00")
    parsed = dateutil.parser.isoparse(value)
    _in_range(parsed.year, "DateTime")
    if parsed.tzinfo is not None:
        parsed.astimezone(_dt.UTC)  # an offset that leaves the range raises OverflowError
    return parsed


def parse_date(value: str) -> _dt.date:
    parsed = _dt.date.fromisoformat(value)
    _in_range(parsed.year, "Date")
    return parsed


DateTimeScalar = ScalarDefinition(
    name="DateTime",
    description="Date with time (isoformat)",
    specified_by_url=None,
    serialize=methodcaller("isoformat"),
    parse_value=wrap_parser(parse_datetime, "DateTime", exceptions=(ValueError, OverflowError)),
    parse_literal=None,
    origin=_dt.datetime,
)
DateScalar = ScalarDefinition(
    name="Date",
    description="Date (isoformat)",
    specified_by_url=None,
    serialize=methodcaller("isoformat"),
    parse_value=wrap_parser(parse_date, "Date", exceptions=(ValueError, OverflowError)),
    parse_literal=None,
    origin=_dt.date,
)
SCALAR_OVERRIDES = {_dt.datetime: DateTimeScalar, _dt.date: DateScalar}
