"""ADT over a real TCP connection: the archive, encodings, escapes, repeats, versions."""

from __future__ import annotations

import sqlalchemy as sa

from api.models.audit import AuditEvent, IdempotencyRecord
from api.models.patients import Patient
from api.models.people import Department
from api.services import Services
from integrations.hl7.mllp import MLLPClient
from tests.hl7.messages import ack_fields, adt


async def patient_by_mrn(services: Services, mrn: str) -> Patient | None:
    async with services.db.session() as session:
        return (
            await session.execute(sa.select(Patient).where(Patient.mrn == mrn))
        ).scalar_one_or_none()


async def test_a01_utf8_creates_the_archive_with_repeated_identifiers(
    his: MLLPClient, demo: Services
) -> None:
    reply = ack_fields(await his.send(adt("A01", "ADT0001").encode("utf-8")))
    assert reply["code"] == "AA" and reply["control_id"] == "ADT0001"
    patient = await patient_by_mrn(demo, "H100234")
    assert patient is not None
    assert patient.name == "欧阳秀兰"
    assert patient.gender == "F" and str(patient.birth_date) == "1955-03-07"
    # The second PID-3 repetition is the ID card number, the XTN-12 of PID-13 the phone.
    assert demo.cipher.decrypt(patient.id_number_enc) == "110105195503071226"
    assert demo.cipher.decrypt(patient.phone_enc) == "13911112222"
    assert patient.allergies == ["青霉素", "磺胺类药物"]  # repeated AL1 segments
    async with demo.db.session() as session:
        rehab = (
            await session.execute(sa.select(Department).where(Department.code == "REHAB"))
        ).scalar_one()
    assert patient.department_id == rehab.id  # ward 0301 mapped by configuration


async def test_gb18030_message_is_decoded_by_msh18(his: MLLPClient, demo: Services) -> None:
    # 𠀾 needs one of GB 18030's four-byte sequences; 億 (837C) has 0x7C, the `|`, as its trailing byte.
    text = adt("A04", "ADT-GB-1", mrn="H200001", family="丁", given="億𠀾", charset="GB 18030-2000")
    raw = text.encode("gb18030")
    assert b"\x83|" in raw  # the trap: a field separator byte inside a character
    reply_bytes = await his.send(raw)
    reply = ack_fields(reply_bytes, "gb18030")
    assert reply["code"] == "AA", reply
    patient = await patient_by_mrn(demo, "H200001")
    assert patient is not None and patient.name == "丁億𠀾"


async def test_segment_separators_lf_and_crlf(his: MLLPClient, demo: Services) -> None:
    for n, separator in enumerate(("\n", "\r\n")):
        text = adt("A04", f"ADT-SEP-{n}", mrn=f"H3000{n}").replace("\r", separator)
        assert ack_fields(await his.send(text.encode()))["code"] == "AA"
        assert await patient_by_mrn(demo, f"H3000{n}") is not None


async def test_escape_sequences_are_unescaped(his: MLLPClient, demo: Services) -> None:
    # \T\ is `&`, \S\ is `^`: the family name arrives as one value with the delimiters in it.
    text = adt("A04", "ADT-ESC-1", mrn="H400001", family="Smith\\T\\Jones", given="Ann\\S\\Marie")
    assert ack_fields(await his.send(text.encode()))["code"] == "AA"
    patient = await patient_by_mrn(demo, "H400001")
    assert patient is not None and patient.name == "Ann^Marie Smith&Jones"


async def test_a08_updates_and_unknown_patient_is_refused(his: MLLPClient, demo: Services) -> None:
    assert ack_fields(await his.send(adt("A01", "ADT-UPD-1").encode()))["code"] == "AA"
    assert (
        ack_fields(await his.send(adt("A08", "ADT-UPD-2", given="秀英").encode()))["code"] == "AA"
    )
    patient = await patient_by_mrn(demo, "H100234")
    assert patient is not None and patient.name == "欧阳秀英"
    # The HIS is where identity comes from; the change is in the patient's history.
    async with demo.db.session() as session:
        events = (
            (
                await session.execute(
                    sa.select(AuditEvent).where(AuditEvent.stream == f"patient:{patient.id}")
                )
            )
            .scalars()
            .all()
        )
    assert [(e.action, e.data["via"], e.data["changes"]) for e in events] == [
        (
            "identity_updated",
            "hl7",
            {"name": {"old": {"value": "欧阳秀兰"}, "new": {"value": "欧阳秀英"}}},
        )
    ]

    reply = ack_fields(await his.send(adt("A08", "ADT-UPD-3", mrn="H999999").encode()))
    assert reply["code"] == "AE"
    assert (
        reply["err_code"] == "204"
        and "unknown patient" in reply["text"]
        and "unknown patient" in reply["err_text"]
    )
    assert await patient_by_mrn(demo, "H999999") is None
    async with demo.db.session() as session:
        keys = (await session.execute(sa.select(IdempotencyRecord.key))).scalars().all()
    assert "ADT-UPD-3" not in keys  # a refused message is not remembered: a resend is applied


async def test_duplicate_control_id_applies_once_and_returns_the_same_ack(
    his: MLLPClient, demo: Services
) -> None:
    first = await his.send(adt("A01", "ADT-DUP-1").encode())
    # The resend carries a changed name: if it were applied again the archive would change.
    second = await his.send(adt("A01", "ADT-DUP-1", given="改名").encode())
    assert first == second
    assert ack_fields(first)["code"] == "AA"
    patient = await patient_by_mrn(demo, "H100234")
    assert patient is not None and patient.name == "欧阳秀兰"


async def test_wrong_version_is_rejected_and_nothing_written(
    his: MLLPClient, demo: Services
) -> None:
    reply = ack_fields(await his.send(adt("A01", "ADT-VER-1", version="3.0").encode()))
    assert reply["code"] == "AR" and reply["err_code"] == "203"
    assert "unsupported HL7 version" in reply["text"]
    assert await patient_by_mrn(demo, "H100234") is None


async def test_unsupported_message_type_is_rejected(his: MLLPClient, demo: Services) -> None:
    text = adt("A01", "ADT-TYPE-1").replace("ADT^A01^ADT_A01", "ADT^A99^ADT_A01")
    reply = ack_fields(await his.send(text.encode()))
    assert reply["code"] == "AR" and reply["err_code"] == "201"


async def test_bytes_that_do_not_match_msh18_are_rejected(his: MLLPClient, demo: Services) -> None:
    text = adt("A04", "ADT-ENC-1", mrn="H500001", charset="UNICODE UTF-8")
    reply = ack_fields(await his.send(text.encode("gb18030")), "latin-1")
    assert reply["code"] == "AR" and reply["err_code"] == "102"
    assert await patient_by_mrn(demo, "H500001") is None
