"""notice_delivery: drop the notice_id index the unique constraint already provides

Every sweep inserts one delivery row per notice; the unique constraint on (notice_id,
reminder_no, channel) answers lookups by notice, so the second index only cost writes.

Revision ID: n002
Revises: n001
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "n002"
down_revision: str | Sequence[str] | None = "n001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_notice_delivery_notice_id", table_name="notice_delivery")


def downgrade() -> None:
    op.create_index("ix_notice_delivery_notice_id", "notice_delivery", ["notice_id"], unique=False)
