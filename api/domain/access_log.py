"""Who saw a patient: the access log read back per patient, for the privacy officer."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.audit import patient_access_log, record_access
from api.auth import Actor
from api.errors import forbidden, invalid, not_found
from api.models.audit import AccessLog, AccessLogPatient
from api.models.patients import Patient
from api.models.people import Role, User

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


async def search_access_log(
    session: AsyncSession,
    actor: Actor,
    *,
    patient_id: int | None = None,
    user_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 500,
) -> list[AccessLog]:
    """The access log filtered by patient, by the person who looked, and by time (from
    inclusive, to exclusive), newest first."""
    if not actor.has_role(*READS_ACCESS_LOG):
        raise forbidden("仅管理员和医务处可查看访问日志 / only admins and medical affairs")
    if patient_id is not None and await session.get(Patient, patient_id) is None:
        raise not_found("患者", "patient")
    if since is not None and until is not None and until <= since:
        raise invalid("to", "结束时间须晚于开始时间 / 'to' must be after 'from'")
    stmt = sa.select(AccessLog)
    if patient_id is not None:
        stmt = stmt.join(
            AccessLogPatient, col(AccessLogPatient.access_log_id) == col(AccessLog.id)
        ).where(col(AccessLogPatient.patient_id) == patient_id)
    if user_id is not None:
        stmt = stmt.where(col(AccessLog.actor_id) == user_id)
    if since is not None:
        stmt = stmt.where(col(AccessLog.at) >= since)
    if until is not None:
        stmt = stmt.where(col(AccessLog.at) < until)
    stmt = stmt.order_by(col(AccessLog.at).desc(), col(AccessLog.id).desc()).limit(
        min(max(limit, 1), 5000)
    )
    return list((await session.execute(stmt)).scalars())


EXPORT_COLUMNS = (
    "时间 time",
    "人员 who",
    "工号/用户名 username",
    "操作 action",
    "接口 interface",
    "来源地址 from",
    "患者 patients",
    "请求 request",
)


def access_log_csv(rows: list[AccessLog], users: dict[int, User]) -> str:
    """The rows as CSV (UTF-8 with a BOM, so Excel shows the Chinese)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for row in rows:
        who = users.get(row.actor_id or 0)
        writer.writerow(
            [
                row.at.isoformat(),
                who.display_name if who else "系统 system",
                who.username if who else "",
                row.action,
                row.resource,
                row.ip or "",
                " ".join(str(i) for i in (row.detail or {}).get("patient_ids", [])),
                row.request_id or "",
            ]
        )
    return "\ufeff" + out.getvalue()


async def export_access_log(
    session: AsyncSession,
    actor: Actor,
    *,
    patient_id: int | None = None,
    user_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> str:
    """The filtered log as CSV; the export itself is an access-log row (action export)."""
    rows = await search_access_log(
        session,
        actor,
        patient_id=patient_id,
        user_id=user_id,
        since=since,
        until=until,
        limit=5000,
    )
    ids = {r.actor_id for r in rows if r.actor_id}
    users = (
        {
            u.id: u
            for u in (await session.execute(sa.select(User).where(col(User.id).in_(ids)))).scalars()
            if u.id is not None
        }
        if ids
        else {}
    )
    await record_access(
        session,
        actor,
        "accessLog",
        action="export",
        detail={
            "format": "csv",
            "rows": len(rows),
            "patient_id": patient_id,
            "user_id": user_id,
            "from": since.isoformat() if since else None,
            "to": until.isoformat() if until else None,
        },
    )
    return access_log_csv(rows, users)
