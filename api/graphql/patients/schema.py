"""patients(search) and patient(id): staff of the patient's department, medical affairs."""

from __future__ import annotations

import strawberry

from api.audit import record_access
from api.domain import patients
from api.graphql.context import Info
from api.graphql.patients.types import Patient
from api.graphql.permissions import IsAuthenticated
from api.graphql.scalars import parse_id


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
            )
        return [Patient.from_row(r, cipher) for r in rows]

    @strawberry.field(permission_classes=[IsAuthenticated], description="One patient's archive.")
    async def patient(self, info: Info, id: strawberry.ID) -> Patient:
        actor = info.context.require_actor()
        cipher = info.context.services.cipher
        async with info.context.transaction() as session:
            row = await patients.access_patient(session, actor, parse_id(id))
            await record_access(session, actor, "patient", detail={"id": row.id})
        return Patient.from_row(row, cipher)
