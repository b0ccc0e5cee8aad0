"""HIS events that start processes (seed 003: 流程…由 HIS 事件触发): an ADT trigger the
mapping names in `adt_processes` (e.g. A03 discharge -> a follow-up review) starts an
instance of that process definition, through the approval engine's own `start_instance`.

The applicant is the attending doctor (PV1-7 through the doctors mapping), else the head
of the patient's department; the instance's data carry the patient, the event and the
visit (PV1-3 ward, PV1-45 discharge time), so the definition's conditions can use them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.domain.approvals import start_instance
from api.domain.people import department_head
from api.models.people import User
from integrations.hl7.handlers import HandlerContext, MessageError
from integrations.hl7.handlers.adt import find_patient
from integrations.hl7.handlers.common import ordering_doctor
from integrations.hl7.parse import InboundMessage, parse_hl7_datetime


async def start_process_for_event(
    session: AsyncSession, ctx: HandlerContext, msg: InboundMessage
) -> dict[str, Any]:
    definition_key = ctx.config.mapping.adt_processes[msg.trigger]
    patient = await find_patient(session, msg, ctx)
    pv1 = msg.segment("PV1")
    applicant: User | None = None
    doctor_id = await ordering_doctor(session, ctx, msg.value(pv1, 7))  # PV1-7 Attending Doctor
    if doctor_id is not None:
        applicant = await session.get(User, doctor_id)
    if applicant is None:
        applicant = await department_head(session, patient.department_id)
    if applicant is None:
        raise MessageError(
            "204",
            "找不到发起人（主管医生或科室主任）/ no applicant: attending doctor or department head",
            segment="PV1",
            field=7,
        )
    try:
        discharged = parse_hl7_datetime(msg.value(pv1, 45), ctx.services.settings.tz)
    except ValueError:
        discharged = None
    instance = await start_instance(
        session,
        definition_key=definition_key,
        applicant=applicant,
        data={
            "patient_id": patient.id,
            "mrn": patient.mrn,
            "event": f"ADT^{msg.trigger}",
            "ward": msg.value(pv1, 3, 1),
            "discharged_at": discharged.isoformat() if discharged else None,
            "his_message": msg.control_id,
        },
        subject_type="patient",
        subject_id=patient.id,
        actor=ctx.actor,
    )
    return {"instance_id": instance.id, "process": definition_key}
