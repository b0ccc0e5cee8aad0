"""notifications: dispatches, deliveries, attempts, read receipts, push subscriptions,
preferences; reminder schedule columns on notice

Revision ID: n001
Revises: 0001

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

import api.models.base

revision: str = "n001"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notice_dispatch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("body", sqlmodel.sql.sqltypes.AutoString(length=4000), nullable=False),
        sa.Column("url", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("critical", sa.Boolean(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("retry_at", api.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", api.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", api.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("external_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column("possibly_dropped", sa.Boolean(), nullable=False),
        sa.Column("drop_reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["recipient_id"], ["user.id"], name=op.f("fk_notice_dispatch_recipient_id_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_dispatch")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_notice_dispatch_idempotency_key")),
    )
    op.create_index(
        "ix_notice_dispatch_open",
        "notice_dispatch",
        ["retry_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('sending', 'retry')"),
        sqlite_where=sa.text("status IN ('sending', 'retry')"),
    )
    op.create_index(
        "ix_notice_dispatch_rate",
        "notice_dispatch",
        ["recipient_id", "channel", "sent_at"],
        unique=False,
    )
    op.create_table(
        "notification_preference",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "channels",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("quiet_start", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=True),
        sa.Column("quiet_end", sqlmodel.sql.sqltypes.AutoString(length=5), nullable=True),
        sa.Column("digest", sa.Boolean(), nullable=False),
        sa.Column(
            "extra",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_notification_preference_user_id_user")
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_notification_preference")),
    )
    op.create_table(
        "push_subscription",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("endpoint", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("p256dh", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("auth", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("user_agent", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True),
        sa.Column("created_at", api.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_success_at", api.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_push_subscription_user_id_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_subscription")),
        sa.UniqueConstraint("endpoint", name=op.f("uq_push_subscription_endpoint")),
    )
    op.create_index(
        op.f("ix_push_subscription_user_id"), "push_subscription", ["user_id"], unique=False
    )
    op.create_table(
        "notice_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dispatch_id", sa.Integer(), nullable=False),
        sa.Column("at", api.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("result", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("detail", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["dispatch_id"],
            ["notice_dispatch.id"],
            name=op.f("fk_notice_attempt_dispatch_id_notice_dispatch"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_attempt")),
    )
    op.create_index(
        op.f("ix_notice_attempt_dispatch_id"), "notice_attempt", ["dispatch_id"], unique=False
    )
    op.create_table(
        "notice_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notice_id", sa.Integer(), nullable=False),
        sa.Column("reminder_no", sa.Integer(), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("dispatch_id", sa.Integer(), nullable=True),
        sa.Column("created_at", api.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dispatch_id"],
            ["notice_dispatch.id"],
            name=op.f("fk_notice_delivery_dispatch_id_notice_dispatch"),
        ),
        sa.ForeignKeyConstraint(
            ["notice_id"], ["notice.id"], name=op.f("fk_notice_delivery_notice_id_notice")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_delivery")),
        sa.UniqueConstraint(
            "notice_id", "reminder_no", "channel", name="uq_notice_delivery_notice_reminder_channel"
        ),
    )
    op.create_index(
        op.f("ix_notice_delivery_dispatch_id"), "notice_delivery", ["dispatch_id"], unique=False
    )
    op.create_index(
        op.f("ix_notice_delivery_notice_id"), "notice_delivery", ["notice_id"], unique=False
    )
    op.create_table(
        "notice_read",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("notice_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column("at", api.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["notice_id"], ["notice.id"], name=op.f("fk_notice_read_notice_id_notice")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["user.id"], name=op.f("fk_notice_read_user_id_user")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_read")),
        sa.UniqueConstraint("notice_id", "source", name="uq_notice_read_notice_source"),
    )
    op.create_index(op.f("ix_notice_read_notice_id"), "notice_read", ["notice_id"], unique=False)
    with op.batch_alter_table("notice") as batch:
        batch.add_column(sa.Column("sender_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("policy_key", sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True)
        )
        batch.add_column(sa.Column("policy_version", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("due_at", api.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column("delivered_at", api.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column("reminders_sent", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("last_reminded_at", api.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(
            sa.Column("escalated_at", api.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("escalation_notice_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("read_via", sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True)
        )
        batch.create_foreign_key(op.f("fk_notice_sender_id_user"), "user", ["sender_id"], ["id"])
    # Notices written before delivery existed are due now (unless read or cancelled).
    op.execute(
        "UPDATE notice SET due_at = created_at WHERE read_at IS NULL AND cancelled_at IS NULL"
    )
    op.create_index(
        "ix_notice_due",
        "notice",
        ["due_at"],
        unique=False,
        postgresql_where=sa.text("due_at IS NOT NULL"),
        sqlite_where=sa.text("due_at IS NOT NULL"),
    )
    op.create_index("ix_notice_subject", "notice", ["subject_type", "subject_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_notice_subject", table_name="notice")
    op.drop_index("ix_notice_due", table_name="notice")
    with op.batch_alter_table("notice") as batch:
        batch.drop_constraint(op.f("fk_notice_sender_id_user"), type_="foreignkey")
        for column in (
            "read_via",
            "escalation_notice_id",
            "escalated_at",
            "last_reminded_at",
            "reminders_sent",
            "delivered_at",
            "due_at",
            "policy_version",
            "policy_key",
            "sender_id",
        ):
            batch.drop_column(column)
    op.drop_index(op.f("ix_notice_read_notice_id"), table_name="notice_read")
    op.drop_table("notice_read")
    op.drop_index(op.f("ix_notice_delivery_notice_id"), table_name="notice_delivery")
    op.drop_index(op.f("ix_notice_delivery_dispatch_id"), table_name="notice_delivery")
    op.drop_table("notice_delivery")
    op.drop_index(op.f("ix_notice_attempt_dispatch_id"), table_name="notice_attempt")
    op.drop_table("notice_attempt")
    op.drop_index(op.f("ix_push_subscription_user_id"), table_name="push_subscription")
    op.drop_table("push_subscription")
    op.drop_table("notification_preference")
    op.drop_index("ix_notice_dispatch_rate", table_name="notice_dispatch")
    op.drop_index(
        "ix_notice_dispatch_open",
        table_name="notice_dispatch",
        postgresql_where=sa.text("status IN ('sending', 'retry')"),
        sqlite_where=sa.text("status IN ('sending', 'retry')"),
    )
    op.drop_table("notice_dispatch")
