"""bots: the inbox of card taps

Revision ID: g002
Revises: g001

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import api.models.base

revision: str = "g002"
down_revision: str | Sequence[str] | None = "g001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bot_tap",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("callback_id", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column(
            "tap",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("received_at", api.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("processed_at", api.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_tap")),
        sa.UniqueConstraint("platform", "callback_id", name="uq_bot_tap_platform_callback_id"),
    )
    op.create_index(
        "ix_bot_tap_unprocessed", "bot_tap", ["processed_at", "received_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_bot_tap_unprocessed", table_name="bot_tap")
    op.drop_table("bot_tap")
