from __future__ import annotations

from datetime import date

import strawberry

from api.crypto import FieldCipher, mask_name
from api.domain.patients import masked_id_number, masked_phone
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
