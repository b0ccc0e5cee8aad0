from __future__ import annotations

from datetime import date, datetime

import strawberry

from api.crypto import FieldCipher, mask_name
from api.domain.patients import age_on, masked_id_number, masked_phone
from api.graphql.context import Info
from api.graphql.people.loaders import load_user
from api.graphql.people.types import UserRef
from api.models.audit import AccessLog as AccessLogRow
from api.models.patients import Patient as PatientRow


@strawberry.type(description="A patient; identifiers are always masked.")
class Patient:
    id: strawberry.ID
    mrn: str
    name: str
    masked_name: str
    gender: str
    birth_date: date | None
    id_number: str | None = strawberry.field(description="Masked ID number (身份证号).")
    phone: str | None = strawberry.field(description="Masked phone number.")
    allergies: list[str]

    @classmethod
    def from_row(cls, row: PatientRow, cipher: FieldCipher) -> Patient:
        return cls(
            id=strawberry.ID(str(row.id)),
            mrn=row.mrn,
            name=row.name,
            masked_name=mask_name(row.name),
            gender=row.gender,
            birth_date=row.birth_date,
            id_number=masked_id_number(cipher, row),
            phone=masked_phone(cipher, row),
            allergies=list(row.allergies or []),
        )


@strawberry.type(description="访问日志的一行 / one access-log row")
class AccessLogEntry:
    row: strawberry.Private[AccessLogRow]
    id: strawberry.ID
    at: datetime
    action: str = strawberry.field(description="query | create | book | call | update | export …")
    resource: str
    ip: str | None

    @classmethod
    def from_row(cls, row: AccessLogRow) -> AccessLogEntry:
        return cls(
            row=row,
            id=strawberry.ID(str(row.id)),
            at=row.at,
            action=row.action,
            resource=row.resource,
            ip=row.ip,
        )

    @strawberry.field(description="接口 / the interface: GraphQL field, FHIR route, export …")
    def interface(self) -> str:
        return self.row.resource

    @strawberry.field(description="患者 / the patients the answer carried")
    def patient_ids(self) -> list[strawberry.ID]:
        return [strawberry.ID(str(i)) for i in (self.row.detail or {}).get("patient_ids", [])]

    @strawberry.field(description="调用系统 / the calling system, for a service call")
    def client(self) -> str | None:
        value = (self.row.detail or {}).get("client")
        return str(value) if value else None

    @strawberry.field(description="谁 / who (none for the system)")
    async def actor(self, info: Info) -> UserRef | None:
        user = await load_user(info.context, self.row.actor_id)
        return UserRef.from_row(user) if user else None


@strawberry.type(description="Who an application concerns, as its approvers see them.")
class PatientSummary:
    id: strawberry.ID
    name: str
    gender: str = strawberry.field(description="M | F | U")
    age: int | None
    mrn: str
    allergies: list[str]

    @classmethod
    def from_row(cls, row: PatientRow, now: datetime) -> PatientSummary:
        return cls(
            id=strawberry.ID(str(row.id)),
            name=row.name,
            gender=row.gender,
            age=age_on(row.birth_date, now.date()),
            mrn=row.mrn,
            allergies=list(row.allergies or []),
        )
