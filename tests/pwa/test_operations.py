"""Every GraphQL document the PWA sends is valid against the server's schema, so a
renamed field or argument on the server fails here instead of on a ward's tablet."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphql import parse, validate

from api.graphql.schema import schema

OPERATIONS = Path(__file__).resolve().parents[2] / "pwa" / "src" / "api" / "operations.ts"


def documents() -> dict[str, str]:
    source = OPERATIONS.read_text()
    fragments = dict(re.findall(r"const (\w+) = `([^`]*)`", source))
    found = {}
    for name, body in re.findall(r"export const (\w+) = `([^`]*)`", source):
        # ${ITEM_FIELDS}-style interpolations of the constants above, which may nest
        while "${" in body:
            body = re.sub(r"\$\{(\w+)\}", lambda m: fragments[m.group(1)], body)
        found[name] = body
    return found


def test_operations_file_has_documents() -> None:
    assert len(documents()) > 20


@pytest.mark.parametrize("name", sorted(documents()))
def test_document_is_valid_against_the_schema(name: str) -> None:
    errors = validate(schema._schema, parse(documents()[name]))
    assert not errors, [e.message for e in errors]
