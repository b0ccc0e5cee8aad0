"""fhir: Bulk Data export jobs and their NDJSON files

Revision ID: f001
Revises: h002

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import api.models.base

revision: str = "f001"
down_revision: str | Sequence[str] | None = "h002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fhir_bulk_export",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("request_url", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("transaction_time", api.models.base.UTCDateTime(), nullable=False),
        sa.Column("created_at", api.models.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", api.models.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        op.f("ix_fhir_bulk_export_user_id"), "fhir_bulk_export", ["user_id"], unique=False
    )
    op.create_table(
        "fhir_bulk_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("export_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("resource_type", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("body", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.ForeignKeyConstraint(["export_id"], ["fhir_bulk_export.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("export_id", "resource_type", name="uq_fhir_bulk_file"),
    )
    op.create_index(
        op.f("ix_fhir_bulk_file_export_id"), "fhir_bulk_file", ["export_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_fhir_bulk_file_export_id"), table_name="fhir_bulk_file")
    op.drop_table("fhir_bulk_file")
    op.drop_index(op.f("ix_fhir_bulk_export_user_id"), table_name="fhir_bulk_export")
    op.drop_table("fhir_bulk_export")
