"""Follow-ups, the patient's treatment archive, statistics and the Excel export."""

from __future__ import annotations

import base64
from datetime import date, datetime
from enum import Enum
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from api.audit import record_access
from api.domain.patients import PatientData
from api.domain.treatments import archive, followups, statistics
from api.domain.treatments.common import load_patient, patient_of_actor
from api.graphql.context import Info
from api.graphql.patients.types import Patient
from api.graphql.permissions import IsAuthenticated, IsPatient, IsStaff
from api.graphql.scalars import parse_id
from api.graphql.treatments.orders import TreatmentStaff
from api.graphql.treatments.types import Appointment, FollowUp, TreatmentOrder, TreatmentRecord


@strawberry.enum(description="统计周期 / statistics period")
class StatPeriod(Enum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@strawberry.enum(description="统计分组 / statistics grouping")
class StatGroup(Enum):
    THERAPIST = "therapist"
    ITEM = "item"
    DEPARTMENT = "department"


@strawberry.type(description="一行统计 / one statistics row")
class StatRow:
    period: str
    key: str
    label: str
    sessions: int
    revenue_cents: int
    fulfilled: int
    no_shows: int
    no_show_rate: float


@strawberry.type(description="导出的文件 / an exported file")
class ExportFile:
    filename: str
    content_type: str
    content_base64: str


@strawberry.type(description="患者治疗档案 / a patient's treatment archive")
class TreatmentArchive:
    patient: Patient
    orders: list[TreatmentOrder]
    appointments: list[Appointment]
    records: list[TreatmentRecord]
    follow_ups: list[FollowUp]


@strawberry.input(description="首次治疗建档 / a patient's archive created at the first treatment")
class PatientArchiveInput:
    mrn: str
    name: str
    gender: str = "U"
    birth_date: date | None = None
    id_number: str | None = None
    phone: str | None = None
    allergies: list[str] | None = None


Scope = IsStaff  # oversight roles are staff too; the domain narrows to the department


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[IsPatient], description="我的随访 / the signed-in patient's follow-ups"
    )
    async def my_follow_ups(self, info: Info, status: str | None = None) -> list[FollowUp]:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            patient = await patient_of_actor(session, actor)
            rows = await followups.follow_ups_for_patient(session, patient.id, status=status)  # type: ignore[arg-type]
            await record_access(
                session,
                actor,
                "follow_ups",
                detail={"patient_id": patient.id},
                patient_ids=[patient.id],
            )
        return [FollowUp.from_row(r) for r in rows]

    @strawberry.field(permission_classes=[TreatmentStaff], description="到期随访 / follow-ups due")
    async def due_follow_ups(self, info: Info, until: datetime) -> list[FollowUp]:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            rows = await followups.due_follow_ups(session, actor, until=until)  # logged there
        return [FollowUp.from_row(r) for r in rows]

    @strawberry.field(
        permission_classes=[IsAuthenticated],
        description="患者治疗档案（患者本人可省略 patientId）/ a patient's archive",
    )
    async def treatment_archive(
        self, info: Info, patient_id: strawberry.ID | None = None
    ) -> TreatmentArchive:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            if patient_id is None:
                target = (await patient_of_actor(session, actor)).id
            else:
                target = parse_id(patient_id, "patientId")
            found = await archive.patient_archive(session, actor, target)  # type: ignore[arg-type]
            await record_access(
                session,
                actor,
                "treatment_archive",
                detail={"patient_id": target},
                patient_ids=[target],
            )
        cipher = info.context.services.cipher
        return TreatmentArchive(
            patient=Patient.from_row(found.patient, cipher),
            orders=[TreatmentOrder.from_row(r) for r in found.orders],
            appointments=[Appointment.from_row(r) for r in found.appointments],
            records=[TreatmentRecord.from_row(r) for r in found.records],
            follow_ups=[FollowUp.from_row(r) for r in found.follow_ups],
        )

    @strawberry.field(permission_classes=[Scope], description="治疗统计 / treatment statistics")
    async def treatment_statistics(
        self,
        info: Info,
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
        period: StatPeriod = StatPeriod.DAY,
        group_by: StatGroup = StatGroup.THERAPIST,
    ) -> list[StatRow]:
        actor = info.context.require_actor()
        async with info.context.read() as session:
            rows = await statistics.treatment_statistics(
                session,
                actor,
                start=from_,
                end=to,
                period=period.value,
                group_by=group_by.value,
                tz=info.context.settings.tz,
            )
        return [
            StatRow(
                period=r.period,
                key=r.key,
                label=r.label,
                sessions=r.sessions,
                revenue_cents=r.revenue_cents,
                fulfilled=r.fulfilled,
                no_shows=r.no_shows,
                no_show_rate=r.no_show_rate,
            )
            for r in rows
        ]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated], description="填写随访问卷 / answer a follow-up"
    )
    async def answer_follow_up(
        self, info: Info, id: strawberry.ID, answers: JSON, idempotency_key: str | None = None
    ) -> FollowUp:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            task = await followups.access_follow_up(session, actor, parse_id(id))
            row = await followups.answer_follow_up(
                session, task, answers, actor=actor, idempotency_key=idempotency_key
            )  # type: ignore[arg-type]
        return FollowUp.from_row(row)

    @strawberry.mutation(
        permission_classes=[TreatmentStaff],
        description="建立或更新患者档案 / create or update a patient's archive",
    )
    async def register_treatment_patient(self, info: Info, input: PatientArchiveInput) -> Patient:
        actor = info.context.require_actor()
        cipher = info.context.services.cipher
        data = PatientData(
            mrn=input.mrn.strip(),
            name=input.name.strip(),
            gender=input.gender,
            birth_date=input.birth_date,
            id_number=input.id_number,
            phone=input.phone,
            allergies=input.allergies,
        )
        async with info.context.transaction() as session:
            patient, _ = await archive.ensure_patient(session, cipher, data, actor=actor)
        return Patient.from_row(patient, cipher)

    @strawberry.mutation(
        permission_classes=[TreatmentStaff], description="更新过敏史 / set a patient's allergies"
    )
    async def set_patient_allergies(
        self, info: Info, patient_id: strawberry.ID, allergies: list[str]
    ) -> Patient:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            patient = await load_patient(session, actor, parse_id(patient_id, "patientId"))
            row = await archive.set_allergies(session, patient, allergies, actor=actor)
        return Patient.from_row(row, info.context.services.cipher)

    @strawberry.mutation(
        permission_classes=[Scope],
        description="导出统计为 Excel（记入访问日志）/ export statistics to Excel",
    )
    async def export_treatment_statistics(
        self,
        info: Info,
        from_: Annotated[date, strawberry.argument(name="from")],
        to: date,
        period: StatPeriod = StatPeriod.DAY,
        group_by: StatGroup = StatGroup.THERAPIST,
    ) -> ExportFile:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            filename, data = await statistics.export_statistics(
                session,
                actor,
                start=from_,
                end=to,
                period=period.value,
                group_by=group_by.value,
                tz=info.context.settings.tz,
            )
        return ExportFile(
            filename=filename,
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            content_base64=base64.b64encode(data).decode(),
        )
