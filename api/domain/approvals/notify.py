"""Notice intents the engine writes to the outbox (delivered after commit by workers).

Titles carry the process name and the instance number, never patient data. Keys are
deterministic so a retried command never notifies twice.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from api import texts
from api.domain.approvals.definition import Definition
from api.models.approvals import ApprovalInstance, ApprovalTask
from notifications import outbox

SUBJECT = "approval_instance"

TASK_ASSIGNED = "approval.task_assigned"
TASK_URGED = "approval.urged"
TASK_OVERDUE = "approval.overdue"
DECIDED = "approval.decided"
RETURNED = "approval.returned"
REJECTED = "approval.rejected"
APPROVED = "approval.approved"
BLOCKED = "approval.blocked"
WITHDRAWN = "approval.withdrawn"
CARBON_COPY = "approval.cc"

# Reminders that lose their point once an instance has ended.
REMINDER_KINDS = [TASK_ASSIGNED, TASK_URGED, TASK_OVERDUE]


def _label(definition: Definition, instance: ApprovalInstance) -> tuple[str, str]:
    name = definition.body.name
    return f"{name.zh} #{instance.id}", f"{name.en or definition.key} #{instance.id}"


async def notify(
    session: AsyncSession,
    definition: Definition,
    instance: ApprovalInstance,
    *,
    recipient_id: int,
    kind: str,
    key: str,
    zh: str,
    en: str,
    body: str = "",
    task: ApprovalTask | None = None,
) -> None:
    """One notice about `instance`: '<zh>：<process #id> / <en>: <process #id>'."""
    assert instance.id is not None
    label_zh, label_en = _label(definition, instance)
    payload: dict[str, object] = {"instance_id": instance.id, "kind": instance.kind}
    if task is not None:
        payload.update(task_id=task.id, step_id=task.step_id)
    await outbox.enqueue(
        session,
        recipient_id=recipient_id,
        kind=kind,
        body=body[:2000],
        texts=outbox.NoticeTexts(
            title_zh=f"{zh}：{label_zh}"[:200],
            title_en=f"{en}: {label_en}"[:200],
            body_zh=texts.split_lines(body).zh[:2000],
            body_en=texts.split_lines(body).en[:2000],
        ),
        idempotency_key=key[:200],
        payload=payload,
        subject_type=SUBJECT,
        subject_id=instance.id,
        critical=definition.is_critical(instance.data or {}),
    )


async def cancel_reminders(session: AsyncSession, instance: ApprovalInstance) -> int:
    assert instance.id is not None
    return await outbox.cancel_for_subject(session, SUBJECT, instance.id, kinds=REMINDER_KINDS)


async def end_task_reminders(
    session: AsyncSession, instance: ApprovalInstance, task_ids: list[int]
) -> int:
    """A task that left the assignee's hands (decided, handed on, cancelled) stops chasing
    them: its unread "awaiting your decision", urge and overdue notices are cancelled, so
    no reminder about a task that is no longer theirs goes out while the instance runs on."""
    assert instance.id is not None
    return await outbox.cancel_for_subject(
        session, SUBJECT, instance.id, kinds=REMINDER_KINDS, payload_ids=("task_id", task_ids)
    )
