"""Patient identifiers at rest: encrypted, rotated to a new key, never in logs or errors."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from api.app import create_app
from api.crypto import FieldCipher
from api.demo.people import PATIENTS
from api.models.patients import Patient
from api.services import Services
from api.settings import Settings
from tests.conftest import GraphQLClient

OLD_KEY = "test-secret-key-0123456789abcdef0123456789"  # conftest's make_settings key
NEW_KEY = "rotated-secret-key-fedcba9876543210fedcba98"
BEDSIDE = str(Path(sys.executable).with_name("bedside"))


async def _run_cli(services: Services, *args: str, **env: str) -> tuple[int, str]:
    environment = {
        **os.environ,
        "BEDSIDE_DATABASE_URL": services.settings.database_url,
        "BEDSIDE_DATA_DIR": str(services.settings.data_dir),
        "BEDSIDE_LOG_JSON": "false",
        **env,
    }
    process = await asyncio.create_subprocess_exec(
        BEDSIDE,
        *args,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return process.returncode or 0, out.decode()


def _with(services: Services, **changes: object) -> Settings:
    # A fresh object: model_copy would keep the cached effective_secret_key.
    return Settings(**{**services.settings.model_dump(), **changes})


async def _search(services: Services, term: str) -> list[str]:
    app = create_app(services.settings, services=services)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as http:
        client = await GraphQLClient(http).as_user("admin")
        data = await client.data(
            "query($s: String) { patients(search: $s) { mrn idNumber phone } }", {"s": term}
        )
        return [p["mrn"] for p in data["patients"]]


async def test_rotate_keys_reencrypts_and_rehashes(demo: Services) -> None:
    async with demo.db.session() as session:
        before = {
            p.mrn: (p.id_number_enc, p.id_number_hash)
            for p in (await session.execute(sa.select(Patient))).scalars()
        }
    mrn, _, _, _, id_number, phone, _, _ = PATIENTS[1]

    rotated = _with(demo, secret_key=NEW_KEY, previous_secret_keys=[OLD_KEY])
    during = Services.build(rotated, db=demo.db)
    # New key deployed, rotation not yet run: reads and lookups still work.
    assert await _search(during, id_number) == [mrn]

    code, out = await _run_cli(
        demo,
        "rotate-keys",
        "--batch-size",
        "2",
        BEDSIDE_SECRET_KEY=NEW_KEY,
        BEDSIDE_PREVIOUS_SECRET_KEYS=f'["{OLD_KEY}"]',
    )
    assert code == 0, out
    assert (
        f"patients: {len(PATIENTS)}, values re-encrypted: {2 * len(PATIENTS)}, unreadable: 0" in out
    )

    # The old key can go now: everything reads under the new key alone.
    new_only = _with(demo, secret_key=NEW_KEY, previous_secret_keys=[])
    cipher = FieldCipher(new_only)
    async with demo.db.session() as session:
        rows = {p.mrn: p for p in (await session.execute(sa.select(Patient))).scalars()}
    for p_mrn, _, _, _, p_id, p_phone, _, _ in PATIENTS:
        row = rows[p_mrn]
        assert row.id_number_enc != before[p_mrn][0] and row.id_number_hash != before[p_mrn][1]
        assert (
            cipher.decrypt(row.id_number_enc) == p_id and cipher.decrypt(row.phone_enc) == p_phone
        )
        assert row.id_number_hash == cipher.lookup_hash(p_id)
        assert p_id not in (row.id_number_enc or "") and p_phone not in (row.phone_enc or "")
    after = Services.build(new_only, db=demo.db)
    assert await _search(after, id_number) == [mrn]
    assert await _search(after, phone) == [mrn]

    # Run again: harmless. With the old key gone and a value still under it: refused, named.
    code, out = await _run_cli(demo, "rotate-keys", BEDSIDE_SECRET_KEY=NEW_KEY)
    assert code == 0, out
    code, out = await _run_cli(
        demo, "rotate-keys", BEDSIDE_SECRET_KEY="yet-another-key-000000000000000000000000"
    )
    assert code == 1 and "unreadable: 10" in out


SECRETS = [value for p in PATIENTS for value in (p[1], p[4], p[5])]


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


async def test_no_patient_data_in_logs_or_error_messages(
    gql: GraphQLClient, all_logs: pytest.LogCaptureFixture
) -> None:
    admin = await gql.as_user("admin")
    therapist = await gql.as_user("pt.sun")
    surgeon = await gql.as_user("dr.li")
    patient = await gql.as_user("patient.zhou")
    bodies = []
    for client in (admin, therapist, surgeon, patient):
        for term in (*SECRETS, "周", SECRETS[1] + "x" * 120, SECRETS[0] * 40):
            bodies.append(
                await client.execute(
                    "query($s: String) { patients(search: $s) { id name maskedName idNumber phone } }",
                    {"s": term},
                )
            )
        for patient_id in ("1", "2", "3", "4", "5", "999", "-1", SECRETS[1]):
            bodies.append(
                await client.execute(
                    "query($i: ID!) { patient(id: $i) { name idNumber phone } }", {"i": patient_id}
                )
            )
    # Errors that echo input: a malformed variable carrying an ID number / phone / name.
    for value in SECRETS:
        bodies.append(
            await admin.execute(
                "query($i: Int) { surgeryCatalog(grade: $i) { code } }", {"i": value}
            )
        )
        bodies.append(
            await admin.execute(
                "query($d: Date!) { myWorklist(date: $d) { __typename } }", {"d": value}
            )
        )
        bodies.append(await admin.execute("{ patients(search: " + f'"{value}"' + ") { nope } }"))
        bodies.append(
            await surgeon.execute(
                "mutation($in: SurgeryApplicationInput!) { submitSurgeryApplication(input: $in) { id } }",
                {
                    "in": {
                        "patientId": value,
                        "procedureCode": value,
                        "plannedAt": value,
                        "emergency": False,
                        "diagnosis": value,
                        "anesthesia": "x",
                        "consentSigned": True,
                    }
                },
            )
        )
    errors = [
        e["message"] + repr(e.get("extensions")) for b in bodies for e in b.get("errors") or []
    ]
    assert len(errors) > 30  # the run did produce errors to inspect
    data_seen = repr([b.get("data") for b in bodies])
    assert PATIENTS[0][1] in data_seen  # staff see names in data (the point is logs and errors)
    assert (
        PATIENTS[0][4] not in data_seen and PATIENTS[0][5] not in data_seen
    )  # identifiers masked in data too
    logged = "\n".join(
        f"{r.getMessage()} {getattr(r, 'fields', '')} {r.exc_text or ''}" for r in all_logs.records
    )
    assert all_logs.records, "no log lines captured"
    for secret in SECRETS:
        assert secret not in logged, f"patient data in the logs: {secret}"
        for message in errors:
            assert secret not in message, f"patient data in an error message: {message}"
