"""treatments: where an item is given (printed on the booking receipt: how to get there)

Revision ID: t002
Revises: t001

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "t002"
down_revision: str | Sequence[str] | None = "t001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("treatment_item") as batch:
        batch.add_column(
            sa.Column(
                "location",
                sqlmodel.sql.sqltypes.AutoString(length=300),
                nullable=False,
                server_default="",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("treatment_item") as batch:
        batch.drop_column("location")
