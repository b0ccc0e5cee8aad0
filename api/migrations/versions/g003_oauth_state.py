"""bots: the Official Account's web OAuth states

Revision ID: g003oa
Revises: g002

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import api.models.base

revision: str = "g003oa"
down_revision: str | Sequence[str] | None = "g002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bot_oauth_state",
        sa.Column("state_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("next_path", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("expires_at", api.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", api.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_bot_oauth_state")),
    )
    op.create_index(
        op.f("ix_bot_oauth_state_expires_at"), "bot_oauth_state", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_bot_oauth_state_expires_at"), table_name="bot_oauth_state")
    op.drop_table("bot_oauth_state")
