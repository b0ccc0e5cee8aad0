"""Who saw a patient: the access log read back per patient, for the privacy officer."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import patient_access_log
from api.auth import Actor
from api.errors import forbidden, not_found
from api.models.audit import AccessLog
from api.models.patients import Patient
from api.models.people import Role

# Who may read the access log: the administrator and medical affairs (医务处, the
# hospital's privacy office).
READS_ACCESS_LOG = (Role.ADMIN, Role.MEDICAL_AFFAIRS)


async def access_log_of_patient(
    session: AsyncSession, actor: Actor, patient_id: int, *, limit: int = 500
) -> list[AccessLog]:
    if not actor.has_role(*READS_ACCESS_LOG):
        raise forbidden("仅管理员和医务处可查看访问日志 / only admins and medical affairs")
    if await session.get(Patient, patient_id) is None:
        raise not_found("患者", "patient")
    return await patient_access_log(session, patient_id, limit=min(limit, 500))
