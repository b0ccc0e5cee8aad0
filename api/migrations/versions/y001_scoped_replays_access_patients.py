"""idempotency keys per actor; the patients each access-log row returned

Revision ID: y001
Revises: z001

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "y001"
down_revision: str | Sequence[str] | None = "z001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Keys stored before this revision were global: they stay, under no actor ('').
    with op.batch_alter_table("idempotency_record") as batch:
        batch.add_column(
            sa.Column(
                "actor",
                sqlmodel.sql.sqltypes.AutoString(length=80),
                nullable=False,
                server_default="",
            )
        )
        batch.drop_constraint("pk_idempotency_record", type_="primary")
        batch.create_primary_key("pk_idempotency_record", ["scope", "actor", "key"])
    with op.batch_alter_table("idempotency_record") as batch:
        batch.alter_column("actor", server_default=None)
    op.create_table(
        "access_log_patient",
        sa.Column("access_log_id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["access_log_id"],
            ["access_log.id"],
            name=op.f("fk_access_log_patient_access_log_id_access_log"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("access_log_id", "patient_id", name=op.f("pk_access_log_patient")),
    )
    op.create_index(
        op.f("ix_access_log_patient_patient_id"), "access_log_patient", ["patient_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_access_log_patient_patient_id"), table_name="access_log_patient")
    op.drop_table("access_log_patient")
    op.execute("DELETE FROM idempotency_record WHERE actor <> ''")
    with op.batch_alter_table("idempotency_record") as batch:
        batch.drop_constraint("pk_idempotency_record", type_="primary")
        batch.create_primary_key("pk_idempotency_record", ["scope", "key"])
        batch.drop_column("actor")
