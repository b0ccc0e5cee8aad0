"""hl7: the patient's address (PID-11), stored encrypted

Revision ID: h002
Revises: h001

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "h002"
down_revision: str | Sequence[str] | None = "h001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("patient") as batch:
        batch.add_column(
            sa.Column("address_enc", sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("patient") as batch:
        batch.drop_column("address_enc")
