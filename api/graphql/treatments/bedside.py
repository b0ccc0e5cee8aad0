"""The PAD at the bedside: check-in and the queue, then 确费, photos, consent, records,
archive. Each mutation calls one named domain action (the same ones sync mutators call).
"""

from __future__ import annotations

from datetime import date

import strawberry
from strawberry.scalars import JSON

from api.audit import record_access
from api.domain.treatments import queue, records
from api.domain.treatments.appointments import access_appointment
from api.graphql.context import Info
from api.graphql.scalars import parse_id
from api.graphql.treatments.orders import TreatmentStaff
from api.graphql.treatments.types import (
    AssessmentRecord,
    Attachment,
    ConsentSignature,
    QueueEntry,
    TreatmentRecord,
)


@strawberry.type
class Query:
    @strawberry.field(
        permission_classes=[TreatmentStaff],
        description="当日队列 / the day's queue of a room or therapist",
    )
    async def day_queue(
        self, info: Info, queue_key: str, date: date, include_done: bool = False
    ) -> list[QueueEntry]:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            rows = await queue.day_queue(
                session, actor, day=date, queue_key=queue_key, include_done=include_done
            )  # logs the patients it returns
        return [QueueEntry.from_row(r) for r in rows]

    @strawberry.field(
        permission_classes=[TreatmentStaff], description="一次治疗记录 / one treatment record"
    )
    async def treatment_record(self, info: Info, id: strawberry.ID) -> TreatmentRecord:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            row = await records.access_record(session, actor, parse_id(id))
            await record_access(
                session,
                actor,
                "treatment_record",
                detail={"id": row.id},
                patient_ids=[row.patient_id],
            )
        return TreatmentRecord.from_row(row)


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[TreatmentStaff], description="签到 / check in")
    async def check_in(
        self, info: Info, appointment_id: strawberry.ID, idempotency_key: str | None = None
    ) -> QueueEntry:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            appointment = await access_appointment(
                session, actor, parse_id(appointment_id, "appointmentId"), lock=True
            )
            entry = await queue.check_in(
                session,
                appointment,
                actor=actor,
                idempotency_key=idempotency_key,
                tz=info.context.settings.tz,
            )
        return QueueEntry.from_row(entry)

    @strawberry.mutation(
        permission_classes=[TreatmentStaff], description="叫号 / call the next patient"
    )
    async def call_next(
        self, info: Info, queue_key: str, idempotency_key: str | None = None
    ) -> QueueEntry | None:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            entry = await queue.call_next(
                session,
                queue_key=queue_key,
                actor=actor,
                idempotency_key=idempotency_key,
                tz=info.context.settings.tz,
            )
        return QueueEntry.from_row(entry) if entry else None

    @strawberry.mutation(
        permission_classes=[TreatmentStaff], description="过号 / skip (to the end of the queue)"
    )
    async def skip_queue_entry(
        self,
        info: Info,
        id: strawberry.ID,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> QueueEntry:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            entry = await queue.access_queue_entry(session, actor, parse_id(id))
            entry = await queue.skip_entry(
                session,
                entry,
                actor=actor,
                expected_version=expected_version,
                idempotency_key=idempotency_key,
            )
        return QueueEntry.from_row(entry)

    @strawberry.mutation(
        permission_classes=[TreatmentStaff],
        description="开始治疗：再次确费 / start: payment re-confirmed",
    )
    async def start_treatment(
        self, info: Info, appointment_id: strawberry.ID, idempotency_key: str | None = None
    ) -> TreatmentRecord:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            appointment = await access_appointment(
                session, actor, parse_id(appointment_id, "appointmentId"), lock=True
            )
            row = await records.start_treatment(
                session, appointment, actor=actor, idempotency_key=idempotency_key
            )
        return TreatmentRecord.from_row(row)

    @strawberry.mutation(
        permission_classes=[TreatmentStaff], description="保存治疗记录 / save the treatment record"
    )
    async def save_treatment_record(
        self,
        info: Info,
        record_id: strawberry.ID,
        data: JSON,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> TreatmentRecord:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            record = await records.access_record(
                session, actor, parse_id(record_id, "recordId"), lock=True
            )
            row = await records.save_treatment_record(
                session,
                record,
                data,
                actor=actor,
                expected_version=expected_version,
                idempotency_key=idempotency_key,
            )  # type: ignore[arg-type]
        return TreatmentRecord.from_row(row)

    @strawberry.mutation(
        permission_classes=[TreatmentStaff], description="保存评估记录 / save the assessment"
    )
    async def save_assessment(
        self,
        info: Info,
        record_id: strawberry.ID,
        data: JSON,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> AssessmentRecord:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            record = await records.access_record(
                session, actor, parse_id(record_id, "recordId"), lock=True
            )
            row = await records.save_assessment(
                session,
                record,
                data,
                actor=actor,
                expected_version=expected_version,
                idempotency_key=idempotency_key,
            )  # type: ignore[arg-type]
        return AssessmentRecord.from_row(row)

    @strawberry.mutation(
        permission_classes=[TreatmentStaff],
        description="关联治疗前/后照片 / attach a before/after photo",
    )
    async def attach_photo(
        self,
        info: Info,
        record_id: strawberry.ID,
        attachment_key: str,
        phase: str,
        idempotency_key: str | None = None,
    ) -> Attachment:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            record = await records.access_record(
                session, actor, parse_id(record_id, "recordId"), lock=True
            )
            row = await records.attach_photo(
                session,
                record,
                attachment_key,
                phase=phase,
                actor=actor,
                idempotency_key=idempotency_key,
            )
        return Attachment.from_row(row)

    @strawberry.mutation(
        permission_classes=[TreatmentStaff],
        description="患者签署知情同意书 / the patient signs the consent",
    )
    async def sign_consent(
        self,
        info: Info,
        record_id: strawberry.ID,
        consent_text_id: strawberry.ID,
        text_sha256: str,
        signature_key: str,
        signer_name: str = "",
        idempotency_key: str | None = None,
    ) -> ConsentSignature:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            record = await records.access_record(
                session, actor, parse_id(record_id, "recordId"), lock=True
            )
            row = await records.sign_consent(
                session,
                record,
                consent_text_id=parse_id(consent_text_id, "consentTextId"),
                text_sha256=text_sha256,
                signature_key=signature_key,
                signer_name=signer_name,
                actor=actor,
                idempotency_key=idempotency_key,
            )
        return ConsentSignature.from_row(row)

    @strawberry.mutation(
        permission_classes=[TreatmentStaff], description="归档，计入疗程 / archive the session"
    )
    async def archive_treatment(
        self, info: Info, record_id: strawberry.ID, idempotency_key: str | None = None
    ) -> TreatmentRecord:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            record = await records.access_record(
                session, actor, parse_id(record_id, "recordId"), lock=True
            )
            row = await records.archive_session(
                session, record, actor=actor, idempotency_key=idempotency_key
            )
        return TreatmentRecord.from_row(row)
