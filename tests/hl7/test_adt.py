"""ADT over a real TCP connection, messages built from the v2.5 definitions (tests/hl7/standard.py).

The archive, encodings (UTF-8 and GB 18030 by MSH-18), escapes, PID-3 by type and
assigning authority, phones (XTN parts, the CP repetition first), PID-11, versions,
ignored triggers, acknowledgement modes (MSH-15/16) and AR when we fail, not the message.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import sqlalchemy as sa

from api.models.audit import AuditEvent, IdempotencyRecord
from api.models.patients import Patient
from api.models.people import Department
from api.services import Services
from integrations.hl7.config import HL7Config, HL7Mapping
from integrations.hl7.listener import build_server
from integrations.hl7.mllp import MLLPClient
from tests.hl7.standard import Identifier, Person, Phone, adt, encode, read_ack

ZHOU = Person(
    mrn="MZ100234",
    family="欧阳",
    given="秀兰",
    birth="19550307",
    gender="F",
    identifiers=[
        Identifier("ZY880012", "PI", "ZY"),  # 住院号, inpatient registry
        Identifier("MZ100234", "PI", "MZ"),  # 门诊号, outpatient registry: our record number
        Identifier("110105195503071226", "NNCHN", "CHN"),  # 居民身份证号 (table 0203 NNxxx)
    ],
    phones=[
        Phone("PRN", "PH", unformatted="01088886666"),  # home landline
        Phone("ORN", "CP", country="86", local="13911112222"),  # mobile, second repetition
    ],
    address={
        "xad_1": "朝阳路1号",  # XAD-1 street address
        "xad_3": "北京市",  # XAD-3 city
        "xad_4": "北京市",  # XAD-4 state or province
        "xad_9": "朝阳区",  # XAD-9 county/parish code
        "xad_7": "H",  # XAD-7 address type: home
    },
)


async def patient_by_mrn(services: Services, mrn: str) -> Patient | None:
    async with services.db.session() as session:
        return (
            await session.execute(sa.select(Patient).where(Patient.mrn == mrn))
        ).scalar_one_or_none()


async def patient_count(services: Services) -> int:
    async with services.db.session() as session:
        return (await session.execute(sa.select(sa.func.count()).select_from(Patient))).scalar_one()


async def test_a01_utf8_creates_the_archive(his: MLLPClient, demo: Services) -> None:
    reply = read_ack(
        await his.send(encode(adt("A01", "ADT0001", ZHOU, allergies=("青霉素", "磺胺类药物"))))
    )
    assert reply.code == "AA" and reply.control_id == "ADT0001", reply
    assert reply.charset == "UNICODE UTF-8"  # answered in the sender's MSH-18
    patient = await patient_by_mrn(demo, "MZ100234")
    assert patient is not None
    assert patient.name == "欧阳秀兰"
    assert patient.gender == "F" and str(patient.birth_date) == "1955-03-07"
    assert demo.cipher.decrypt(patient.id_number_enc) == "110105195503071226"
    # The CP repetition wins over the landline sent first; XTN-5 86 is not part of the
    # number a patient types when binding the Official Account.
    assert demo.cipher.decrypt(patient.phone_enc) == "13911112222"
    assert patient.phone_hash == demo.cipher.lookup_hash("13911112222")
    assert demo.cipher.decrypt(patient.address_enc) == "北京市朝阳区朝阳路1号"
    assert patient.allergies == ["青霉素", "磺胺类药物"]
    async with demo.db.session() as session:
        rehab = (
            await session.execute(sa.select(Department).where(Department.code == "REHAB"))
        ).scalar_one()
    assert patient.department_id == rehab.id  # ward 0301 mapped by configuration


async def test_identifiers_in_either_order_keep_one_record(his: MLLPClient, demo: Services) -> None:
    assert read_ack(await his.send(encode(adt("A04", "ADT-ORD-1", ZHOU)))).code == "AA"
    before = await patient_count(demo)
    swapped = Person(
        **{
            **ZHOU.__dict__,
            "given": "秀英",
            "identifiers": [ZHOU.identifiers[1], ZHOU.identifiers[0]],  # type: ignore[index]
        }
    )
    assert read_ack(await his.send(encode(adt("A08", "ADT-ORD-2", swapped)))).code == "AA"
    assert await patient_count(demo) == before
    patient = await patient_by_mrn(demo, "MZ100234")
    assert patient is not None and patient.name == "欧阳秀英"
    assert await patient_by_mrn(demo, "ZY880012") is None
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


async def test_phone_from_area_and_local_number(his: MLLPClient, demo: Services) -> None:
    person = Person(
        mrn="H600001",
        phones=[Phone("PRN", "CP", local="13911113333")],  # XTN-7 only, no XTN-12
    )
    assert read_ack(await his.send(encode(adt("A04", "ADT-TEL-1", person)))).code == "AA"
    patient = await patient_by_mrn(demo, "H600001")
    assert patient is not None and demo.cipher.decrypt(patient.phone_enc) == "13911113333"


async def test_gb18030_message_is_decoded_by_msh18(his: MLLPClient, demo: Services) -> None:
    # 𠀾 needs one of GB 18030's four-byte sequences; 億 (837C) has 0x7C, the `|`, as its trailing byte.
    person = Person(mrn="H200001", family="丁", given="億𠀾", address={"xad_3": "上海市"})
    raw = encode(adt("A04", "ADT-GB-1", person, charset="GB 18030-2000"))
    assert b"\x83|" in raw  # the trap: a field separator byte inside a character
    reply = read_ack(await his.send(raw), "gb18030")
    assert reply.code == "AA" and reply.charset == "GB 18030-2000", reply
    patient = await patient_by_mrn(demo, "H200001")
    assert patient is not None and patient.name == "丁億𠀾"
    assert demo.cipher.decrypt(patient.address_enc) == "上海市"


async def test_segment_separators_lf_and_crlf(his: MLLPClient, demo: Services) -> None:
    for n, separator in enumerate((b"\n", b"\r\n")):
        raw = encode(adt("A04", f"ADT-SEP-{n}", Person(mrn=f"H3000{n}"))).replace(b"\r", separator)
        assert read_ack(await his.send(raw)).code == "AA"
        assert await patient_by_mrn(demo, f"H3000{n}") is not None


async def test_escape_sequences_are_unescaped(his: MLLPClient, demo: Services) -> None:
    # HL7 v2.5 §2.7.4: \T\ is the subcomponent separator `&`, \S\ the component separator `^`.
    person = Person(mrn="H400001", family="Smith\\T\\Jones", given="Ann\\S\\Marie")
    assert read_ack(await his.send(encode(adt("A04", "ADT-ESC-1", person)))).code == "AA"
    patient = await patient_by_mrn(demo, "H400001")
    assert patient is not None and patient.name == "Ann^Marie Smith&Jones"


async def test_a08_for_unknown_patient_is_refused(his: MLLPClient, demo: Services) -> None:
    reply = read_ack(await his.send(encode(adt("A08", "ADT-UPD-3", Person(mrn="H999999")))))
    assert reply.code == "AE" and reply.err_code == "204"
    assert "unknown patient" in reply.text and "unknown patient" in reply.err_text
    assert await patient_by_mrn(demo, "H999999") is None
    async with demo.db.session() as session:
        keys = (await session.execute(sa.select(IdempotencyRecord.key))).scalars().all()
    assert "ADT-UPD-3" not in keys  # a refused message is not remembered: a resend is applied


async def test_duplicate_control_id_applies_once_and_returns_the_same_ack(
    his: MLLPClient, demo: Services
) -> None:
    first = await his.send(encode(adt("A01", "ADT-DUP-1", ZHOU)))
    # The resend carries a changed name: if it were applied again the archive would change.
    changed = Person(**{**ZHOU.__dict__, "given": "改名"})
    second = await his.send(encode(adt("A01", "ADT-DUP-1", changed)))
    assert first == second and read_ack(first).code == "AA"
    patient = await patient_by_mrn(demo, "MZ100234")
    assert patient is not None and patient.name == "欧阳秀兰"


async def test_wrong_version_and_type_are_rejected_and_nothing_written(
    his: MLLPClient, demo: Services
) -> None:
    before = await patient_count(demo)
    raw = encode(adt("A01", "ADT-VER-1", ZHOU)).replace(b"|2.5|", b"|3.0|", 1)
    reply = read_ack(await his.send(raw))
    assert (
        reply.code == "AR" and reply.err_code == "203" and "unsupported HL7 version" in reply.text
    )
    reply = read_ack(await his.send(encode(adt("A99", "ADT-TYPE-1", ZHOU))))
    assert reply.code == "AR" and reply.err_code == "201"
    assert await patient_count(demo) == before


async def test_bytes_that_do_not_match_msh18_are_rejected(his: MLLPClient, demo: Services) -> None:
    text = adt("A04", "ADT-ENC-1", Person(mrn="H500001", family="丁")).to_er7()
    reply = read_ack(await his.send(text.encode("gb18030")), "latin-1")
    assert reply.code == "AR" and reply.err_code == "102"
    assert reply.control_id == "ADT-ENC-1"  # MSA-2 read from the raw header
    assert await patient_by_mrn(demo, "H500001") is None


async def test_harmless_adt_triggers_are_accepted_and_ignored(
    his: MLLPClient, demo: Services, hl7_config: HL7Config
) -> None:
    before = await patient_count(demo)
    for n, trigger in enumerate(("A02", "A03", "A31", "A40")):
        reply = read_ack(
            await his.send(encode(adt(trigger, f"ADT-IGN-{n}", Person(mrn=f"IGN{n}"))))
        )
        assert reply.code == "AA", (trigger, reply)
    assert await patient_count(demo) == before

    # A hospital that wants to know: an empty list answers them AR 201.
    mapping = HL7Mapping.from_dict({"ignored_adt_triggers": []})
    server = build_server(demo, HL7Config(hl7_config.settings, mapping), port=0)
    async with server, MLLPClient("127.0.0.1", server.port, timeout=10) as client:
        reply = read_ack(await client.send(encode(adt("A03", "ADT-IGN-9", Person(mrn="IGN9")))))
    assert reply.code == "AR" and reply.err_code == "201"


async def test_enhanced_mode_acknowledgements(his: MLLPClient, demo: Services) -> None:
    # MSH-15 AL, MSH-16 NE: only the accept acknowledgement (HL7 v2.5 §2.9.3, table 0155).
    only_accept = adt("A04", "ENH-1", Person(mrn="E1"), accept_ack="AL", application_ack="NE")
    reply = read_ack(await his.send(encode(only_accept)))
    assert reply.code == "CA" and reply.control_id == "ENH-1"
    assert await patient_by_mrn(demo, "E1") is not None

    # AL / AL: the accept acknowledgement, then the application acknowledgement.
    both = adt("A04", "ENH-2", Person(mrn="E2"), accept_ack="AL", application_ack="AL")
    first = read_ack(await his.send(encode(both)))
    second = read_ack(await his.read_frame())
    assert (first.code, second.code) == ("CA", "AA")
    assert first.control_id == second.control_id == "ENH-2"

    # NE / ER: nothing on success; on an error only the application acknowledgement.
    unknown = adt("A08", "ENH-3", Person(mrn="E404"), accept_ack="NE", application_ack="ER")
    reply = read_ack(await his.send(encode(unknown)))
    assert reply.code == "AE" and reply.err_code == "204"

    # A message that is not for us: CR as the accept acknowledgement, no application ack.
    wrong = encode(adt("A04", "ENH-4", Person(mrn="E4"), accept_ack="AL", application_ack="AL"))
    reply = read_ack(await his.send(wrong.replace(b"|2.5|", b"|3.0|", 1)))
    assert reply.code == "CR" and reply.err_code == "203"
    assert await patient_by_mrn(demo, "E4") is None


async def test_write_conflict_is_answered_ar_so_the_his_resends(
    his: MLLPClient, demo: Services
) -> None:
    if not demo.db.is_postgres:
        pytest.skip("row locks need PostgreSQL")
    # Another writer holds an uncommitted patient with the same record number: the
    # listener's insert waits on the unique index, then fails when that writer commits.
    async with demo.db.session() as other:
        other.add(Patient(mrn="RACE1", name="并发"))
        await other.flush()
        send = asyncio.create_task(his.send(encode(adt("A04", "RACE-1", Person(mrn="RACE1")))))
        deadline = asyncio.get_running_loop().time() + 20
        while True:
            waiting = (
                await other.execute(sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted"))
            ).scalar_one()
            if waiting:
                break
            assert asyncio.get_running_loop().time() < deadline, "the listener never waited"
            await asyncio.sleep(0.05)
        await other.commit()
    reply = read_ack(await send)
    assert reply.code == "AR" and reply.err_code == "206", reply
    patient = await patient_by_mrn(demo, "RACE1")
    assert patient is not None and patient.name == "并发"  # the listener wrote nothing
    # The HIS resends the same message unchanged: now it applies.
    assert read_ack(await his.send(encode(adt("A04", "RACE-1", Person(mrn="RACE1"))))).code == "AA"
    patient = await patient_by_mrn(demo, "RACE1")
    assert patient is not None and patient.name == "周建国"
    with contextlib.suppress(Exception):
        send.cancel()


async def test_a_discharge_starts_the_configured_process(
    his: MLLPClient, demo: Services, hl7_config: HL7Config
) -> None:
    from api.domain import approvals
    from api.models.approvals import ApprovalInstance, ApprovalTask
    from api.models.people import User
    from tests.approvals.helpers import REVIEW_V1

    async with demo.db.transaction() as session:
        await approvals.publish_definition(session, REVIEW_V1)
    person = Person(mrn="H910001", family="冯", given="出院")
    assert read_ack(await his.send(encode(adt("A01", "ADT-DIS-1", person)))).code == "AA"
    mapping = HL7Mapping.from_dict(
        {
            "doctors": hl7_config.mapping.doctors,
            "departments": hl7_config.mapping.departments,
            "adt_processes": {"A03": "test_review"},
        }
    )
    server = build_server(demo, HL7Config(hl7_config.settings, mapping), port=0)
    async with server, MLLPClient("127.0.0.1", server.port, timeout=10) as client:
        # PV1-7 Attending Doctor D1001 (dr.li) is the applicant.
        reply = read_ack(
            await client.send(encode(adt("A03", "ADT-DIS-2", person, attending="D1001")))
        )
        assert reply.code == "AA", reply
        # A process that does not exist: refused, nothing started.
        broken = HL7Mapping.from_dict(
            {"doctors": hl7_config.mapping.doctors, "adt_processes": {"A03": "nope"}}
        )
    server = build_server(demo, HL7Config(hl7_config.settings, broken), port=0)
    async with server, MLLPClient("127.0.0.1", server.port, timeout=10) as client:
        reply = read_ack(
            await client.send(encode(adt("A03", "ADT-DIS-3", person, attending="D1001")))
        )
    assert reply.code == "AE", reply
    patient = await patient_by_mrn(demo, "H910001")
    assert patient is not None
    async with demo.db.session() as session:
        instances = list(
            (
                await session.execute(
                    sa.select(ApprovalInstance).where(
                        ApprovalInstance.subject_type == "patient",
                        ApprovalInstance.subject_id == patient.id,
                    )
                )
            ).scalars()
        )
        assert len(instances) == 1
        [instance] = instances
        applicant = await session.get(User, instance.applicant_id)
        tasks = (
            await session.execute(
                sa.select(sa.func.count())
                .select_from(ApprovalTask)
                .where(ApprovalTask.instance_id == instance.id)
            )
        ).scalar_one()
    assert (
        instance.kind == "test_review" and applicant is not None and applicant.username == "dr.li"
    )
    assert instance.data["event"] == "ADT^A03" and instance.data["patient_id"] == patient.id
    assert tasks >= 1  # the first stage is open
