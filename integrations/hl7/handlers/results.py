"""ORU^R01 from the LIS: critical values (危急值) become notices that repeat until read.

ORU_R01 (HL7 v2.5 §7.3.1): PATIENT_RESULT(PATIENT(PID PATIENT_VISIT(PV1))
ORDER_OBSERVATION(ORC OBR OBSERVATION(OBX)...)). What is read:
- PID-3 the patient (the archive must know them: AE 204 otherwise);
- PV1-7 Attending Doctor (XCN-1 through the doctors mapping), else ORC-12 / OBR-16 the
  ordering provider: who is told, with the head of the patient's department;
- OBR-3 Filler Order Number (the LIS's id of the test request), with OBX-3 and OBX-4 it
  identifies the result, so a resend raises nothing new;
- OBX-3 Observation Identifier, OBX-5 value, OBX-6 units, OBX-7 reference range, OBX-8
  Abnormal Flags (table 0078: HH above upper panic limits, LL below lower panic limits,
  AA very abnormal; the mapping's `critical_flags`), OBX-11 result status (D deleted and W
  wrong are not reported), OBX-14 observation time.
Results that are not critical are acknowledged and not kept: the EMR holds lab results.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.domain.critical_values import CriticalResult, raise_critical_value
from api.models.people import User
from integrations.hl7.handlers import HandlerContext, handles
from integrations.hl7.handlers.adt import find_patient
from integrations.hl7.handlers.common import ordering_doctor
from integrations.hl7.parse import InboundMessage, parse_hl7_datetime

NOT_REPORTED = ("D", "W", "X")


def observations(msg: InboundMessage) -> list[tuple[Any, Any, Any]]:
    """(OBX, the OBR it belongs to, the ORC of that order) in message order."""
    out: list[tuple[Any, Any, Any]] = []
    orc = obr = None
    for segment in msg.message:
        name = str(segment[0])
        if name == "ORC":
            orc, obr = segment, None
        elif name == "OBR":
            obr = segment
        elif name == "OBX":
            out.append((segment, obr, orc))
    return out


@handles(("ORU", "R01"))
async def apply_results(
    session: AsyncSession, ctx: HandlerContext, msg: InboundMessage
) -> dict[str, Any]:
    flags = {f.upper() for f in ctx.config.mapping.critical_flags}
    critical = [
        (obx, obr, orc)
        for obx, obr, orc in observations(msg)
        if {f.upper() for f in _repeats(msg, obx, 8)} & flags
        and msg.value(obx, 11).upper() not in NOT_REPORTED
    ]
    if not critical:
        return {"critical": 0}
    patient = await find_patient(session, msg, ctx)
    notified: set[int] = set()
    for obx, obr, orc in critical:
        doctor = await attending(session, ctx, msg, obr, orc)
        try:
            observed = parse_hl7_datetime(msg.value(obx, 14), ctx.services.settings.tz)
        except ValueError:
            observed = None
        filler = msg.value(obr, 3) or msg.value(orc, 3) or msg.control_id
        code = msg.value(obx, 3, 1)
        result = CriticalResult(
            result_key=f"{msg.sending_application}:{filler}:{code}:{msg.value(obx, 4)}",
            test_code=code,
            test_name=msg.value(obx, 3, 2) or code,
            value=msg.value(obx, 5),
            units=msg.value(obx, 6, 2) or msg.value(obx, 6, 1),
            reference_range=msg.value(obx, 7),
            flag=",".join(_repeats(msg, obx, 8)),
            observed_at=observed,
        )
        notified.update(
            await raise_critical_value(session, patient, result, doctor=doctor, actor=ctx.actor)
        )
    return {"critical": len(critical), "notified": ",".join(map(str, sorted(notified)))}


def _repeats(msg: InboundMessage, segment: Any, field: int) -> list[str]:
    return [
        v
        for rep in range(1, msg.repetitions(segment, field) + 1)
        if (v := msg.value(segment, field, 1, rep))
    ]


async def attending(
    session: AsyncSession, ctx: HandlerContext, msg: InboundMessage, obr: Any, orc: Any
) -> User | None:
    pv1 = msg.segment("PV1")
    for his_id in (msg.value(pv1, 7), msg.value(orc, 12), msg.value(obr, 16)):
        user_id = await ordering_doctor(session, ctx, his_id)
        if user_id is not None:
            return (await session.execute(sa.select(User).where(User.id == user_id))).scalar_one()
    return None
