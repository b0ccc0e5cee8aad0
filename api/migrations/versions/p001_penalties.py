"""penalties

Revision ID: p001
Revises: 0001

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql  # noqa: F401

import api.models.base

revision: str = "p001"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "penalty_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("category", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("effective_to", sa.Date(), nullable=True),
        sa.Column("created_at", api.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_penalty_item")),
        sa.UniqueConstraint("code", "version", name="uq_penalty_item_code_version"),
    )
    op.create_index(op.f("ix_penalty_item_code"), "penalty_item", ["code"], unique=False)
    op.create_table(
        "penalty_rule",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("period", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=True),
        sa.Column("measure", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column(
            "action",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("effective_to", sa.Date(), nullable=True),
        sa.Column("created_at", api.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_penalty_rule")),
        sa.UniqueConstraint("code", "version", name="uq_penalty_rule_code_version"),
    )
    op.create_index(op.f("ix_penalty_rule_code"), "penalty_rule", ["code"], unique=False)
    op.create_table(
        "penalty",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("doctor_id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column("total_points", sa.Float(), nullable=False),
        sa.Column("measure", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("issued_at", api.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("issued_by_id", sa.Integer(), nullable=True),
        sa.Column("ended_at", api.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("suspension_id", sa.Integer(), nullable=True),
        sa.Column("created_at", api.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", api.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"], ["department.id"], name=op.f("fk_penalty_department_id_department")
        ),
        sa.ForeignKeyConstraint(["doctor_id"], ["user.id"], name=op.f("fk_penalty_doctor_id_user")),
        sa.ForeignKeyConstraint(
            ["issued_by_id"], ["user.id"], name=op.f("fk_penalty_issued_by_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["penalty_rule.id"], name=op.f("fk_penalty_rule_id_penalty_rule")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_penalty")),
    )
    op.create_index(op.f("ix_penalty_doctor_id"), "penalty", ["doctor_id"], unique=False)
    op.create_index(op.f("ix_penalty_status"), "penalty", ["status"], unique=False)
    op.create_index(
        "uq_penalty_periodic",
        "penalty",
        ["rule_id", "doctor_id", "period_start"],
        unique=True,
        postgresql_where=sa.text("kind = 'periodic'"),
        sqlite_where=sa.text("kind = 'periodic'"),
    )
    op.create_table(
        "penalty_score",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("doctor_id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("points", sa.Float(), nullable=False),
        sa.Column("occurred_at", api.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("recorded_by_id", sa.Integer(), nullable=False),
        sa.Column("recorder_unit", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("appeal_reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("appeal_instance_id", sa.Integer(), nullable=True),
        sa.Column("created_at", api.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("confirmed_at", api.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["department.id"],
            name=op.f("fk_penalty_score_department_id_department"),
        ),
        sa.ForeignKeyConstraint(
            ["doctor_id"], ["user.id"], name=op.f("fk_penalty_score_doctor_id_user")
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["penalty_item.id"], name=op.f("fk_penalty_score_item_id_penalty_item")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"], ["user.id"], name=op.f("fk_penalty_score_recorded_by_id_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_penalty_score")),
    )
    op.create_index(
        op.f("ix_penalty_score_department_id"), "penalty_score", ["department_id"], unique=False
    )
    op.create_index(
        "ix_penalty_score_doctor_occurred",
        "penalty_score",
        ["doctor_id", "occurred_at"],
        unique=False,
    )
    op.create_index(op.f("ix_penalty_score_status"), "penalty_score", ["status"], unique=False)
    op.create_table(
        "penalty_score_link",
        sa.Column("penalty_id", sa.Integer(), nullable=False),
        sa.Column("score_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["penalty_id"], ["penalty.id"], name=op.f("fk_penalty_score_link_penalty_id_penalty")
        ),
        sa.ForeignKeyConstraint(
            ["score_id"],
            ["penalty_score.id"],
            name=op.f("fk_penalty_score_link_score_id_penalty_score"),
        ),
        sa.PrimaryKeyConstraint("penalty_id", "score_id", name=op.f("pk_penalty_score_link")),
    )
    op.create_index(
        op.f("ix_penalty_score_link_score_id"), "penalty_score_link", ["score_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_penalty_score_link_score_id"), table_name="penalty_score_link")
    op.drop_table("penalty_score_link")
    op.drop_index(op.f("ix_penalty_score_status"), table_name="penalty_score")
    op.drop_index("ix_penalty_score_doctor_occurred", table_name="penalty_score")
    op.drop_index(op.f("ix_penalty_score_department_id"), table_name="penalty_score")
    op.drop_table("penalty_score")
    op.drop_index(
        "uq_penalty_periodic",
        table_name="penalty",
        postgresql_where=sa.text("kind = 'periodic'"),
        sqlite_where=sa.text("kind = 'periodic'"),
    )
    op.drop_index(op.f("ix_penalty_status"), table_name="penalty")
    op.drop_index(op.f("ix_penalty_doctor_id"), table_name="penalty")
    op.drop_table("penalty")
    op.drop_index(op.f("ix_penalty_rule_code"), table_name="penalty_rule")
    op.drop_table("penalty_rule")
    op.drop_index(op.f("ix_penalty_item_code"), table_name="penalty_item")
    op.drop_table("penalty_item")
