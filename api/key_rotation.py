"""Re-encrypt patient identifiers under the current secret key (`bedside rotate-keys`).

Procedure: set BEDSIDE_SECRET_KEY to the new key and BEDSIDE_PREVIOUS_SECRET_KEYS to the
old one(s), restart the fleet (reads and lookups keep working: MultiFernet decrypts old
values, lookups match hashes under every key), run `bedside rotate-keys`, then drop the
old key from BEDSIDE_PREVIOUS_SECRET_KEYS. Runs in batches of its own short transactions,
so the API keeps serving; running it twice is harmless.

Tokens are signed with the secret key too: rotating it signs everyone out.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from cryptography.fernet import InvalidToken

from api.crypto import FieldCipher
from api.db import Database
from api.models.patients import Patient


@dataclass
class RotationReport:
    patients: int = 0
    values: int = 0
    unreadable: int = 0  # encrypted under a key that is no longer configured


async def rotate_patient_identifiers(
    db: Database, cipher: FieldCipher, *, batch_size: int = 500
) -> RotationReport:
    report = RotationReport()
    last_id = 0
    while True:
        async with db.transaction() as session:
            patients = list(
                (
                    await session.execute(
                        sa.select(Patient)
                        .where(Patient.id > last_id)
                        .order_by(Patient.id)
                        .limit(batch_size)
                        .with_for_update()
                    )
                ).scalars()
            )
            if not patients:
                return report
            for patient in patients:
                assert patient.id is not None
                last_id = patient.id
                report.patients += 1
                for enc_attr, hash_attr in (
                    ("id_number_enc", "id_number_hash"),
                    ("phone_enc", "phone_hash"),
                    ("address_enc", None),
                ):
                    token = getattr(patient, enc_attr)
                    if token is None:
                        continue
                    try:
                        plain = cipher.decrypt(token)
                    except InvalidToken:
                        report.unreadable += 1
                        continue
                    setattr(patient, enc_attr, cipher.rotate(token))
                    if hash_attr is not None:
                        setattr(patient, hash_attr, cipher.lookup_hash(plain))
                    report.values += 1
