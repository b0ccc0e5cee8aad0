"""Surgery approval end to end over GraphQL/HTTP: routing by grade, deadlines, the notice."""

from __future__ import annotations

import asyncio
import base64
from datetime import datetime

import sqlalchemy as sa

from api.models.audit import AccessLog
from api.services import Services
from tests.conftest import GraphQLClient, error_code
from tests.surgery.helpers import (
    INSTANCE,
    SUBMIT,
    application,
    approve,
    patient_id,
    pending_assignees,
)

NOTICE = "query($id: ID!) { surgeryNotice(instanceId: $id) { filename contentType sha256 sizeBytes contentBase64 } }"


async def pdf_text(pdf: bytes) -> str:
    """The text poppler's pdftotext extracts (fonts embedded right, or no CJK comes out)."""
    proc = await asyncio.create_subprocess_exec(
        "pdftotext",
        "-",
        "-",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate(pdf)
    assert proc.returncode == 0, err
    return out.decode()


def hours_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 3600


async def test_grade_1_goes_to_the_department_head_only(gql: GraphQLClient, demo: Services) -> None:
    li = await gql.as_user("dr.li")
    pid = await patient_id(demo, "P0002")
    inst = (await li.data(SUBMIT, {"i": application(pid, "86.3", diagnosis="背部皮脂腺囊肿")}))[
        "submitSurgeryApplication"
    ]
    assert inst["status"] == "running" and inst["precheck"] == {"passed": True, "findings": []}
    assert pending_assignees(inst) == ["chief.wang"]
    chief = await gql.as_user("chief.wang")
    await approve(chief, inst["id"])
    done = (await li.data(INSTANCE, {"id": inst["id"]}))["approvalInstance"]
    assert done["status"] == "approved"
    assert hours_between(done["createdAt"], done["dueAt"]) == 24
    assert "over_authority" not in [e["action"] for e in done["history"]]


async def test_grade_3_head_then_medical_affairs(gql: GraphQLClient, demo: Services) -> None:
    li = await gql.as_user("dr.li")
    pid = await patient_id(demo, "P0003")
    inst = (await li.data(SUBMIT, {"i": application(pid, "51.23")}))["submitSurgeryApplication"]
    assert pending_assignees(inst) == ["chief.wang"]
    await approve(await gql.as_user("chief.wang"), inst["id"])
    ma = await gql.as_user("ma.zhao")
    after_head = (await ma.data(INSTANCE, {"id": inst["id"]}))["approvalInstance"]
    assert after_head["status"] == "running" and pending_assignees(after_head) == ["ma.zhao"]
    await approve(ma, inst["id"])
    assert (await ma.data(INSTANCE, {"id": inst["id"]}))["approvalInstance"]["status"] == "approved"


async def test_grade_4_head_then_parallel_countersign_and_notice(
    gql: GraphQLClient, demo: Services
) -> None:
    qian = await gql.as_user("dr.qian")
    pid = await patient_id(demo, "P0004")
    inst = (
        await qian.data(SUBMIT, {"i": application(pid, "52.7", diagnosis="胰头癌", emergency=True)})
    )["submitSurgeryApplication"]
    assert pending_assignees(inst) == ["chief.wang"]
    assert (
        hours_between(
            (await qian.data(INSTANCE, {"id": inst["id"]}))["approvalInstance"]["createdAt"],
            inst["dueAt"],
        )
        == 2
    )
    await approve(await gql.as_user("chief.wang"), inst["id"])
    ma, vp = await gql.as_user("ma.zhao"), await gql.as_user("vp.chen")
    parallel = (await ma.data(INSTANCE, {"id": inst["id"]}))["approvalInstance"]
    assert pending_assignees(parallel) == ["ma.zhao", "vp.chen"]  # both at once: 会签
    await approve(vp, inst["id"])
    assert (await ma.data(INSTANCE, {"id": inst["id"]}))["approvalInstance"]["status"] == "running"
    await approve(ma, inst["id"])
    done = (await ma.data(INSTANCE, {"id": inst["id"]}))["approvalInstance"]
    assert done["status"] == "approved"
    actions = [e["action"] for e in done["history"]]
    assert actions[-2:] == ["completed", "notice_generated"] and "over_authority" not in actions
    recorded = done["history"][-1]["data"]["sha256"]

    # The applicant downloads the notice; its bytes match the recorded hash and the
    # Chinese text is really in the PDF (extracted with poppler's pdftotext).
    notice = (await qian.data(NOTICE, {"id": inst["id"]}))["surgeryNotice"]
    pdf = base64.b64decode(notice["contentBase64"])
    assert (
        notice["sha256"] == recorded
        and notice["contentType"] == "application/pdf"
        and pdf.startswith(b"%PDF")
    )
    text = await pdf_text(pdf)
    for expected in (
        "手术审批通知书",
        "胰十二指肠切除术",
        "李淑珍",
        "钱医生",
        "王主任",
        "陈副院长",
        "赵科长",
        "急诊手术",
    ):
        assert expected in text, expected
    async with demo.db.session() as s:
        exports = (
            (await s.execute(sa.select(AccessLog).where(AccessLog.resource == "surgery_notice")))
            .scalars()
            .all()
        )
    assert [e.action for e in exports] == ["export"]

    # Someone with no part in it may not download it: to them it does not exist.
    assert (
        error_code(await (await gql.as_user("pt.sun")).error(NOTICE, {"id": inst["id"]}))
        == "NOT_FOUND"
    )


async def test_idempotent_submission(gql: GraphQLClient, demo: Services) -> None:
    li = await gql.as_user("dr.li")
    pid = await patient_id(demo, "P0002")
    first = (await li.data(SUBMIT, {"i": application(pid, "47.09"), "k": "tap-1"}))[
        "submitSurgeryApplication"
    ]
    again = (await li.data(SUBMIT, {"i": application(pid, "47.09"), "k": "tap-1"}))[
        "submitSurgeryApplication"
    ]
    assert first["id"] == again["id"]
