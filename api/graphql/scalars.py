"""Helpers shared by the GraphQL types."""

from __future__ import annotations

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
