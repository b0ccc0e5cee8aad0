"""bots: task cards, callback nonces, binding links and attempts

Revision ID: g001
Revises: 0001

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import api.models.base

revision: str = "g001"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bot_binding_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("at", api.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_binding_attempt")),
    )
    op.create_index(
        op.f("ix_bot_binding_attempt_external_id"),
        "bot_binding_attempt",
        ["external_id"],
        unique=False,
    )
    op.create_table(
        "bot_nonce",
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("nonce", sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
        sa.Column("seen_at", api.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("platform", "nonce", name=op.f("pk_bot_nonce")),
    )
    op.create_index(op.f("ix_bot_nonce_seen_at"), "bot_nonce", ["seen_at"], unique=False)
    op.create_table(
        "bot_binding_link",
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("expires_at", api.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", api.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("used_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["used_by_id"], ["user.id"], name=op.f("fk_bot_binding_link_used_by_id_user")
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_bot_binding_link")),
    )
    op.create_table(
        "bot_card",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("card_key", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column(
            "wanted",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "shown",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("response_code", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("dirty", sa.Boolean(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("created_at", api.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", api.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", api.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_bot_card_user_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_card")),
        sa.UniqueConstraint("platform", "card_key", name="uq_bot_card_platform_card_key"),
    )
    op.create_index(op.f("ix_bot_card_instance_id"), "bot_card", ["instance_id"], unique=False)
    op.create_index("ix_bot_card_pending", "bot_card", ["platform", "dirty"], unique=False)
    op.create_index(op.f("ix_bot_card_task_id"), "bot_card", ["task_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_bot_card_task_id"), table_name="bot_card")
    op.drop_index("ix_bot_card_pending", table_name="bot_card")
    op.drop_index(op.f("ix_bot_card_instance_id"), table_name="bot_card")
    op.drop_table("bot_card")
    op.drop_table("bot_binding_link")
    op.drop_index(op.f("ix_bot_nonce_seen_at"), table_name="bot_nonce")
    op.drop_table("bot_nonce")
    op.drop_index(op.f("ix_bot_binding_attempt_external_id"), table_name="bot_binding_attempt")
    op.drop_table("bot_binding_attempt")
