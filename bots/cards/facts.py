"""What a task card says: its key, its facts (patient masked) and its state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.crypto import mask_name
from api.domain import approvals
from api.models.approvals import ApprovalInstance, ApprovalTask, TaskStatus
from api.models.patients import Patient
from api.models.people import User
from api.services import Services

PLATFORMS = ("dingtalk", "wecom")
SWEEP_BATCH = 200

OUTCOME_WORDS = {
    TaskStatus.APPROVED: "已同意",
    TaskStatus.REJECTED: "已驳回",
    TaskStatus.RETURNED: "已退回",
    TaskStatus.TRANSFERRED: "已转交",
}
INSTANCE_WORDS = {
    "approved": "审批已通过",
    "rejected": "审批已驳回",
    "returned": "已退回申请人",
    "withdrawn": "申请已撤回",
    "blocked": "审批已中止",
}
GRADE_WORDS = {1: "一级", 2: "二级", 3: "三级", 4: "四级"}


def card_key(task_id: int, user_id: int) -> str:
    """Stable per task and holder: a resend after a crash finds the same card."""
    return f"bedside-t{task_id}-u{user_id}"


def local_time(settings: Any, at: datetime | None, fmt: str = "%H:%M") -> str:
    return at.astimezone(settings.tz).strftime(fmt) if at else ""


async def task_facts(
    session: AsyncSession, services: Services, task: ApprovalTask, instance: ApprovalInstance
) -> dict[str, str]:
    """The application's key facts, patient masked. Reads data keys the surgery form uses."""
    data = instance.data or {}
    patient_name = ""
    if data.get("patient_id") is not None:
        patient = await session.get(Patient, int(data["patient_id"]))
        patient_name = mask_name(patient.name) if patient else ""
    grade = data.get("grade")
    precheck = instance.precheck or {}
    if precheck:
        passed = precheck.get("passed", True)
        findings = precheck.get("findings") or []
        precheck_text = (
            "通过 / passed"
            if passed and not findings
            else f"未通过 {len(findings)} 项 / {len(findings)} finding(s)"
        )
    else:
        precheck_text = "—"
    definition_name = ""
    try:
        _, definition = await approvals.definition_by_id(session, instance.definition_id)
        definition_name = definition.body.name.zh
    except Exception:  # noqa: BLE001 - the title falls back to the kind
        definition_name = instance.kind
    return {
        "title": f"{definition_name} #{instance.id}",
        "patient": patient_name or "—",
        "procedure": str(
            data.get("procedure_name") or data.get("procedure") or data.get("procedure_code") or "—"
        ),
        "grade": GRADE_WORDS.get(int(grade), str(grade))
        if isinstance(grade, int | str) and str(grade).isdigit()
        else "—",
        "emergency": "急诊 / emergency" if data.get("emergency") else "否 / no",
        "precheck": precheck_text,
        "deadline": local_time(services.settings, task.due_at, "%m-%d %H:%M") or "—",
        "detail_url": f"{services.settings.public_url.rstrip('/')}/tasks/{task.id}",
    }


async def wanted_state(
    session: AsyncSession,
    services: Services,
    task: ApprovalTask,
    instance: ApprovalInstance,
    *,
    facts: dict[str, str] | None = None,
    note: str = "",
) -> dict[str, Any]:
    """The card's content for the task as it stands: buttons while pending, else the outcome."""
    if task.status == TaskStatus.PENDING:
        state, outcome = "pending", ""
    elif task.status in OUTCOME_WORDS:
        decider = await session.get(User, task.assignee_id)
        name = decider.display_name if decider else ""
        state = str(task.status)
        outcome = f"{OUTCOME_WORDS[TaskStatus(task.status)]} · {name} · {local_time(services.settings, task.decided_at)}"
    else:  # cancelled: the instance ended elsewhere (rejected, withdrawn, another signer)
        state = "closed"
        outcome = f"{INSTANCE_WORDS.get(instance.status, '已结束')} / closed"
    wanted: dict[str, Any] = {
        "state": state,
        "outcome": outcome,
        "facts": facts
        if facts is not None
        else await task_facts(session, services, task, instance),
    }
    if note:
        wanted["note"] = note
    return wanted
