"""Every root field declares who may call it, so nothing is exposed by accident."""

from __future__ import annotations

from api.graphql.schema import schema


def test_every_root_field_declares_permissions() -> None:
    missing = []
    for root in (schema.query, schema.mutation):
        definition = root.__strawberry_definition__
        for field in definition.fields:
            if not field.permission_classes:
                missing.append(f"{definition.name}.{field.python_name}")
    assert missing == [], f"fields without permission_classes: {missing}"
