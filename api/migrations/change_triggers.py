"""The change log: a trigger on every synced table writes one `sync_change` row per
insert, update or delete, stamped with the writing transaction's id.

Triggers rather than ORM hooks, so a change made by any path (GraphQL, a bot callback,
an HL7 message, a bulk UPDATE, a hand-run SQL fix) reaches the devices.
Migrations call `create_change_trigger(op, table, entity)` for each synced table.

Frozen: this module belongs to the migrations that use it (s001, s002), so a migration
means the same thing whenever it runs. A different trigger is a new module and a new
migration, never an edit here.
"""

from __future__ import annotations

from typing import Any

PG_FUNCTION = """
CREATE OR REPLACE FUNCTION sync_record_change() RETURNS trigger AS $$
BEGIN
    INSERT INTO sync_change (entity, entity_id, txid)
    VALUES (
        TG_ARGV[0],
        CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END,
        pg_current_xact_id()::text::bigint
    );
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""


def create_change_function(op: Any) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)


def drop_change_function(op: Any) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS sync_record_change()")


def create_change_trigger(op: Any, table: str, entity: str) -> None:
    name = f"sync_change_{table}"
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f'CREATE TRIGGER {name} AFTER INSERT OR UPDATE OR DELETE ON "{table}" '
            f"FOR EACH ROW EXECUTE FUNCTION sync_record_change('{entity}')"
        )
        return
    for event, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
        op.execute(
            f'CREATE TRIGGER {name}_{event.lower()} AFTER {event} ON "{table}" BEGIN '
            f"INSERT INTO sync_change (entity, entity_id, txid) VALUES ('{entity}', {row}.id, 0); END"
        )


def drop_change_trigger(op: Any, table: str) -> None:
    name = f"sync_change_{table}"
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f'DROP TRIGGER IF EXISTS {name} ON "{table}"')
        return
    for event in ("insert", "update", "delete"):
        op.execute(f"DROP TRIGGER IF EXISTS {name}_{event}")
