"""sync: change-log triggers on the treatment tables devices hold

Revision ID: s002
Revises: s001, t001
"""

from collections.abc import Sequence

from alembic import op

from api.migrations.change_triggers import create_change_trigger, drop_change_trigger

revision: str = "s002"
down_revision: str | Sequence[str] | None = ("s001", "t001")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "appointment",
    "queue_entry",
    "treatment_record",
    "assessment_record",
    "consent_signature",
)


def upgrade() -> None:
    for table in TABLES:
        create_change_trigger(op, table, table)


def downgrade() -> None:
    for table in TABLES:
        drop_change_trigger(op, table)
