"""hl7: the outbound message queue and the appointment links to the HIS

Revision ID: h001
Revises: 0001

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import api.models.base

revision: str = "h001"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "hl7_appointment_link",
        sa.Column("appointment_id", sa.Integer(), nullable=False),
        sa.Column("his_appointment_id", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column("reported_version", sa.Integer(), nullable=False),
        sa.Column("reported_status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
        sa.Column("reported_starts_at", api.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", api.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("appointment_id", name=op.f("pk_hl7_appointment_link")),
        sa.UniqueConstraint(
            "his_appointment_id", name=op.f("uq_hl7_appointment_link_his_appointment_id")
        ),
    )
    op.create_table(
        "hl7_outbound",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("control_id", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("message_type", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("subject_type", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=True),
        sa.Column("body", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", api.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("created_at", api.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", api.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hl7_outbound")),
        sa.UniqueConstraint("control_id", name=op.f("uq_hl7_outbound_control_id")),
    )
    op.create_index(
        "ix_hl7_outbound_due", "hl7_outbound", ["status", "next_attempt_at"], unique=False
    )
    op.create_index(
        op.f("ix_hl7_outbound_subject_id"), "hl7_outbound", ["subject_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_hl7_outbound_subject_id"), table_name="hl7_outbound")
    op.drop_index("ix_hl7_outbound_due", table_name="hl7_outbound")
    op.drop_table("hl7_outbound")
    op.drop_table("hl7_appointment_link")
