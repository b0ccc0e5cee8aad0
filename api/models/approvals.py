"""Approval definitions (versioned data), instances, tasks and carbon copies.

The rules that move these rows live in `api/domain/approvals/`; this module only says
what is stored.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from api.models.base import json_field, ts_field


class InstanceStatus(StrEnum):
    RUNNING = "running"
    APPROVED = "approved"
    REJECTED = "rejected"
    RETURNED = "returned"  # 退回 to the applicant, waiting for resubmission
    WITHDRAWN = "withdrawn"
    BLOCKED = "blocked"  # a policy guard stopped it (e.g. privilege suspended mid-flow)


# An instance in one of these states takes no more decisions.
CLOSED_STATUSES = frozenset(
    {
        InstanceStatus.APPROVED,
        InstanceStatus.REJECTED,
        InstanceStatus.WITHDRAWN,
        InstanceStatus.BLOCKED,
    }
)


class TaskStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    RETURNED = "returned"
    CANCELLED = "cancelled"
    TRANSFERRED = "transferred"


class TaskKind(StrEnum):
    NORMAL = "normal"
    ADDED_SIGNER = "added_signer"  # 加签: must approve too


class ApprovalDefinition(SQLModel, table=True):
    """One published version of a process. Never edited once published."""

    __tablename__ = "approval_definition"
    __table_args__ = (
        sa.UniqueConstraint("key", "version", name="uq_approval_definition_key_version"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=60, index=True)
    version: int
    body: dict[str, Any] = json_field()
    published_at: datetime = ts_field(default_now=True)


class ApprovalInstance(SQLModel, table=True):
    __tablename__ = "approval_instance"
    __table_args__ = (
        sa.Index("ix_approval_instance_subject", "subject_type", "subject_id"),
        # The overdue sweep reads only running instances that are due and not yet marked.
        sa.Index(
            "ix_approval_instance_due_open",
            "due_at",
            postgresql_where=sa.text("status = 'running' AND overdue = false"),
            sqlite_where=sa.text("status = 'running' AND overdue = 0"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=60, index=True)  # the definition key
    definition_id: int = Field(foreign_key="approval_definition.id")
    definition_version: int
    applicant_id: int = Field(foreign_key="user.id", index=True)
    subject_type: str | None = Field(default=None, max_length=40)
    subject_id: int | None = Field(default=None)
    data: dict[str, Any] = json_field()
    precheck: dict[str, Any] | None = json_field(default_factory=lambda: None, nullable=True)
    status: str = Field(default=InstanceStatus.RUNNING, max_length=20, index=True)
    # Where the flow stands: the current stage, the steps finished in this pass, and a
    # round number bumped at every return so tasks of an earlier pass are not counted.
    stage_index: int = Field(default=0)
    completed_steps: list[str] = json_field(default_factory=list)
    round: int = Field(default=1)
    returned_from: dict[str, Any] | None = json_field(default_factory=lambda: None, nullable=True)
    due_at: datetime | None = ts_field(nullable=True)
    overdue: bool = Field(default=False)
    blocked_reason: str | None = Field(default=None, max_length=1000)
    pdf_path: str | None = Field(default=None, max_length=500)
    created_at: datetime = ts_field(default_now=True, index=True)
    closed_at: datetime | None = ts_field(nullable=True)


class ApprovalTask(SQLModel, table=True):
    __tablename__ = "approval_task"
    __table_args__ = (
        sa.Index("ix_approval_task_instance_step", "instance_id", "step_id", "round"),
        sa.Index("ix_approval_task_assignee_status", "assignee_id", "status"),
        # The escalation sweep reads only pending tasks that are due and not yet escalated.
        sa.Index(
            "ix_approval_task_due_pending",
            "due_at",
            postgresql_where=sa.text("status = 'pending' AND escalated_at IS NULL"),
            sqlite_where=sa.text("status = 'pending' AND escalated_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    instance_id: int = Field(foreign_key="approval_instance.id")
    step_id: str = Field(max_length=60)
    stage_index: int
    branch: str | None = Field(default=None, max_length=60)
    round: int = Field(default=1)
    assignee_id: int = Field(foreign_key="user.id")
    status: str = Field(default=TaskStatus.PENDING, max_length=20)
    kind: str = Field(default=TaskKind.NORMAL, max_length=20)
    due_at: datetime | None = ts_field(nullable=True)
    overdue: bool = Field(default=False)
    escalated_at: datetime | None = ts_field(nullable=True)
    transferred_from_id: int | None = Field(
        default=None, foreign_key="approval_task.id", nullable=True
    )
    added_by_id: int | None = Field(default=None, foreign_key="user.id", nullable=True)
    urge_count: int = Field(default=0)
    urged_at: datetime | None = ts_field(nullable=True)
    created_at: datetime = ts_field(default_now=True)
    decided_at: datetime | None = ts_field(nullable=True)
    comment: str | None = Field(default=None, max_length=2000)


class ApprovalCarbonCopy(SQLModel, table=True):
    """抄送: read-only visibility of an instance for one user."""

    __tablename__ = "approval_carbon_copy"
    __table_args__ = (
        sa.UniqueConstraint("instance_id", "user_id", name="uq_approval_carbon_copy_instance_user"),
    )

    id: int | None = Field(default=None, primary_key=True)
    instance_id: int = Field(foreign_key="approval_instance.id", index=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    by_id: int | None = Field(default=None, foreign_key="user.id", nullable=True)
    created_at: datetime = ts_field(default_now=True)
