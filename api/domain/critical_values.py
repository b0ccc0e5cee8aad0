"""危急值: a critical laboratory value, told to those who must act on it until they read it.

The LIS reports a result whose abnormal flag says critical (HL7 ORU^R01, OBX-8 `HH`,
`LL` or `AA`). The attending doctor and the head of the patient's department each get a
notice under the `critical_value` reminder policy (notifications/outbox/policies.yaml): at once,
day and night, repeated until each of them reads it, then escalated (seed 003:
危急值…自动向主管医生和科室主任发送告警通知). The same result reported again (a resend,
a correction with the same result id) raises nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.audit import append_event
from api.auth import Actor
from api.domain.people import department_head
from api.errors import DomainError, ErrorCode
from api.models.notices import Notice
from api.models.patients import Patient
from api.models.people import User
from notifications import outbox

POLICY = "critical_value"
KIND = "lab.critical"


@dataclass
class CriticalResult:
    result_key: str  # unique per result at its source: sender, filler order, test
    test_code: str
    test_name: str
    value: str
    units: str = ""
    reference_range: str = ""
    flag: str = ""  # HL7 table 0078: HH, LL, AA
    observed_at: datetime | None = None


def critical_stream(patient_id: int) -> str:
    return f"patient:{patient_id}:critical_values"


async def raise_critical_value(
    session: AsyncSession,
    patient: Patient,
    result: CriticalResult,
    *,
    doctor: User | None,
    actor: Actor,
) -> list[int]:
    """Notify the attending doctor and the department head; returns who was notified.

    Refused (NOT_FOUND) when there is nobody to tell: the sender must then phone it in,
    not believe it delivered.
    """
    assert patient.id is not None
    head = await department_head(session, patient.department_id)
    if head is None and doctor is not None:
        head = await department_head(session, doctor.department_id)
    recipients: list[User] = []
    for user in (doctor, head):
        if user is not None and user.id not in {r.id for r in recipients}:
            recipients.append(user)
    if not recipients:
        raise DomainError(
            ErrorCode.NOT_FOUND,
            "无主管医生或科室主任可通知，请电话报告 / nobody to notify (attending doctor or"
            " department head); report by phone",
        )
    keys = {f"critical:{result.result_key}:{u.id}"[:200]: u for u in recipients}
    known = set(
        (
            await session.execute(
                sa.select(col(Notice.idempotency_key)).where(
                    col(Notice.idempotency_key).in_(list(keys))
                )
            )
        ).scalars()
    )
    if known == set(keys):
        return [u.id for u in recipients]  # type: ignore[misc]  # told already: a resend
    value = f"{result.value} {result.units}".strip()
    title = f"危急值 / critical value: {result.test_name or result.test_code} {value}"
    if result.flag:
        title += f" ({result.flag})"
    body = (
        f"患者 {patient.name}（病历号 {patient.mrn}）{result.test_name or result.test_code} {value}"
        + (f"，参考范围 {result.reference_range}" if result.reference_range else "")
        + "。请立即处理并在系统中确认已读。/ Act now and mark this notice read."
    )
    for user in recipients:
        assert user.id is not None
        await outbox.enqueue(
            session,
            recipient_id=user.id,
            kind=KIND,
            title=title[:200],
            body=body,
            idempotency_key=f"critical:{result.result_key}:{user.id}"[:200],
            subject_type="patient",
            subject_id=patient.id,
            critical=True,
            policy=POLICY,
            payload={
                "test": result.test_code,
                "value": result.value,
                "units": result.units,
                "flag": result.flag,
            },
        )
    await append_event(
        session,
        critical_stream(patient.id),
        "critical_value",
        actor=actor,
        data={
            "result": result.result_key[:200],
            "test": result.test_code,
            "flag": result.flag,
            "notified": [u.id for u in recipients],
        },
    )
    return [u.id for u in recipients]  # type: ignore[misc]
