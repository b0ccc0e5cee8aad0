"""Follow-ups, the patient's treatment archive and statistics."""

from __future__ import annotations

import strawberry
from strawberry.scalars import JSON

from api.audit import record_access
from api.domain.treatments import followups
from api.domain.treatments.common import patient_of_actor
from api.graphql.context import Info
from api.graphql.permissions import IsAuthenticated, IsPatient
from api.graphql.scalars import parse_id
from api.graphql.treatments.types import FollowUp


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[IsPatient], description="我的随访 / the signed-in patient's follow-ups")
    async def my_follow_ups(self, info: Info, status: str | None = None) -> list[FollowUp]:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            patient = await patient_of_actor(session, actor)
            rows = await followups.follow_ups_for_patient(session, patient.id, status=status)  # type: ignore[arg-type]
            await record_access(session, actor, "follow_ups", detail={"patient_id": patient.id})
        return [FollowUp.from_row(r) for r in rows]


@strawberry.type
class Mutation:
    @strawberry.mutation(permission_classes=[IsAuthenticated], description="填写随访问卷 / answer a follow-up")
    async def answer_follow_up(self, info: Info, id: strawberry.ID, answers: JSON, idempotency_key: str | None = None) -> FollowUp:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            task = await followups.access_follow_up(session, actor, parse_id(id))
            row = await followups.answer_follow_up(session, task, answers, actor=actor, idempotency_key=idempotency_key)  # type: ignore[arg-type]
        return FollowUp.from_row(row)
