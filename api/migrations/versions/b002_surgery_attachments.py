"""surgery_application.attachments: the pre-operative documents uploaded with it

The sha256 of each uploaded attachment (scanned or photographed documents), in order.

Revision ID: b002
Revises: b001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b002"
down_revision: str | Sequence[str] | None = "b001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("surgery_application") as batch:
        batch.add_column(
            sa.Column(
                "attachments",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default="[]",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("surgery_application") as batch:
        batch.drop_column("attachments")
