"""patients(search) and patient(id): staff of the patient's department, medical affairs.
correctPatientIdentity and unbindPatientWechat: medical affairs and admins, audited."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import strawberry

from api.audit import record_access
from api.domain import patient_binding, patients
from api.domain.access_log import READS_ACCESS_LOG, export_access_log, search_access_log
from api.graphql.context import Info
from api.graphql.patients.types import AccessLogEntry, Patient
from api.graphql.permissions import HasRole, IsAuthenticated
from api.graphql.scalars import parse_id

Correctors = HasRole(*patients.CORRECTORS)


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="Patients the caller may see, identifiers masked.",
    )
    async def patients(self, info: Info, search: str | None = None) -> list[Patient]:
        actor = info.context.require_actor()
        cipher = info.context.services.cipher
        async with info.context.transaction() as session:
            rows = await patients.search_patients(session, actor, cipher, search)
            await record_access(
                session,
                actor,
                "patients",
                detail={"search": bool(search), "ids": [r.id for r in rows]},
                patient_ids=[r.id for r in rows],
            )
        return [Patient.from_row(r, cipher) for r in rows]

    @strawberry.field(permission_classes=[IsAuthenticated], description="One patient's archive.")
    async def patient(self, info: Info, id: strawberry.ID) -> Patient:
        actor = info.context.require_actor()
        cipher = info.context.services.cipher
        async with info.context.transaction() as session:
            row = await patients.access_patient(session, actor, parse_id(id))
            await record_access(
                session, actor, "patient", detail={"id": row.id}, patient_ids=[row.id]
            )
        return Patient.from_row(row, cipher)

    @strawberry.field(
        permission_classes=[HasRole(*READS_ACCESS_LOG)],
        description="访问日志 / who saw which patient's data, when, from where, through which "
        "interface; by patient, by person and by time (from inclusive, to exclusive), newest first",
    )
    async def access_log(
        self,
        info: Info,
        patient_id: strawberry.ID | None = None,
        user_id: strawberry.ID | None = None,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
    ) -> list[AccessLogEntry]:
        actor = info.context.require_actor()
        async with info.context.read() as session:
            rows = await search_access_log(
                session,
                actor,
                patient_id=parse_id(patient_id, "patientId") if patient_id else None,
                user_id=parse_id(user_id, "userId") if user_id else None,
                since=from_,
                until=to,
            )
        return [AccessLogEntry.from_row(r) for r in rows]


@strawberry.type
class AccessLogExport:
    filename: str
    content_type: str
    content: str = strawberry.field(description="CSV text (UTF-8 with BOM, opens in Excel)")


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[HasRole(*READS_ACCESS_LOG)],
        description="导出访问日志 / the filtered access log as CSV; the export is itself logged",
    )
    async def export_access_log(
        self,
        info: Info,
        patient_id: strawberry.ID | None = None,
        user_id: strawberry.ID | None = None,
        from_: Annotated[datetime | None, strawberry.argument(name="from")] = None,
        to: datetime | None = None,
    ) -> AccessLogExport:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            content = await export_access_log(
                session,
                actor,
                patient_id=parse_id(patient_id, "patientId") if patient_id else None,
                user_id=parse_id(user_id, "userId") if user_id else None,
                since=from_,
                until=to,
            )
        return AccessLogExport(
            filename=f"access-log-{datetime.now(UTC):%Y%m%d-%H%M%S}.csv",
            content_type="text/csv; charset=utf-8",
            content=content,
        )

    @strawberry.mutation(
        permission_classes=[Correctors],
        description="更正身份信息: correct name, ID number or phone (medical affairs, admin); "
        "old and new values go to the patient's hash-chained history.",
    )
    async def correct_patient_identity(
        self,
        info: Info,
        patient_id: strawberry.ID,
        reason: str,
        name: str | None = None,
        id_number: str | None = None,
        phone: str | None = None,
    ) -> Patient:
        actor = info.context.require_actor()
        cipher = info.context.services.cipher
        async with info.context.transaction() as session:
            row = await patients.access_patient(session, actor, parse_id(patient_id, "patientId"))
            row = await patients.correct_patient_identity(
                session,
                cipher,
                row,
                actor=actor,
                reason=reason,
                name=name,
                id_number=id_number,
                phone=phone,
            )
            await record_access(
                session,
                actor,
                "patient.identity_corrected",
                action="update",
                detail={"patient_ids": [row.id]},
                patient_ids=[row.id],
            )
        return Patient.from_row(row, cipher)

    @strawberry.mutation(
        permission_classes=[Correctors],
        description="解绑: remove the patient's Official Account binding after the desk checked "
        "the person (medical affairs, admin). Returns how many bindings were removed.",
    )
    async def unbind_patient_wechat(
        self, info: Info, patient_id: strawberry.ID, reason: str
    ) -> int:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            row = await patients.access_patient(session, actor, parse_id(patient_id, "patientId"))
            return await patient_binding.unbind_patient_openid(
                session, row, actor=actor, reason=reason
            )
