"""A surgeon's side of an application over GraphQL: the pre-check before submitting, the
pre-operative documents, amend and resubmit after 退回, withdraw, what the server says the
viewer may do, and what an approver sees (patient, history in people's words, the chain
check, old task links, a person picker, texts in both languages)."""

from __future__ import annotations

import base64

import httpx
import sqlalchemy as sa

from api.models.approvals import ApprovalInstance, ApprovalTask
from api.models.audit import AuditEvent
from api.models.surgery import SurgeryApplication
from api.models.treatments import Attachment
from api.services import Services
from tests.conftest import GraphQLClient, error_code
from tests.surgery.helpers import DECIDE, SUBMIT, application, patient_id, pending_for
from tests.treatments.helpers import png_bytes

PRECHECK = """query($i: SurgeryApplicationInput!) { precheckSurgeryApplication(input: $i) {
  passed findings { code field message messages { zh en } } } }"""
VIEW = """query($id: ID!) { approvalInstance(id: $id) { id status viewerCanWithdraw viewerCanResubmit
  tasks { id viewerCanDecide }
  historyVerified patient { name gender age mrn allergies }
  history { action actor { displayName } person { displayName } step { name } hash } } }"""
APPLICATION = """query($id: ID!) { surgeryApplication(instanceId: $id) { diagnosis attachments
  procedure { name grade level } surgeon { displayName } } }"""
RESUBMIT = """mutation($id: ID!, $i: SurgeryApplicationInput!, $c: String) {
  resubmitSurgeryApplication(instanceId: $id, input: $i, comment: $c) { id status } }"""
DOCUMENT = """query($id: ID!, $h: String!) { surgeryDocument(instanceId: $id, sha256: $h) {
  contentType sha256 contentBase64 } }"""
WITHDRAW = "mutation($id: ID!) { withdrawApplication(id: $id) { id status } }"
TASK = "query($id: ID!) { approvalTask(id: $id) { id status comment instance { id } } }"
STAFF = "query($s: String) { staff(search: $s) { username displayName department { name } } }"
TRANSFER = (
    """mutation($id: ID!, $u: String!) { transferTask(taskId: $id, toUsername: $u) { id } }"""
)
RETURN = """mutation($id: ID!, $c: String) { decideTask(taskId: $id, decision: RETURN, comment: $c,
  returnTo: "applicant") { id status } }"""


async def counts(services: Services) -> dict[str, int]:
    async with services.db.session() as s:

        async def n(model: type, *where: object) -> int:
            return int(await s.scalar(sa.select(sa.func.count()).select_from(model).where(*where)))

        return {
            "instances": await n(ApprovalInstance),
            "applications": await n(SurgeryApplication),
            "tasks": await n(ApprovalTask),
            "events": await n(AuditEvent, AuditEvent.stream.like("approval:%")),
        }


async def test_precheck_before_submitting_says_what_to_do_and_writes_nothing(
    gql: GraphQLClient, demo: Services
) -> None:
    li = await gql.as_user("dr.li")  # privileged up to grade 3
    pid = await patient_id(demo, "P0002")
    before = await counts(demo)

    grade4 = (await li.data(PRECHECK, {"i": application(pid, "52.7", consentSigned=False)}))[
        "precheckSurgeryApplication"
    ]
    assert grade4["passed"] is False
    found = {f["code"]: f for f in grade4["findings"]}
    assert set(found) == {"NO_PRIVILEGE", "CONSENT_NOT_SIGNED"}
    privilege = found["NO_PRIVILEGE"]["messages"]
    # In words a surgeon understands: the grade, and what to do about it.
    assert (
        "四级手术" in privilege["zh"] and "申请" in privilege["zh"] and "/" not in privilege["zh"]
    )
    assert privilege["en"].startswith("This is a grade-4 procedure")
    assert found["CONSENT_NOT_SIGNED"]["messages"] == {
        "zh": "手术知情同意书未签署",
        "en": "the informed consent is not signed",
    }

    grade3 = (await li.data(PRECHECK, {"i": application(pid, "51.23")}))[
        "precheckSurgeryApplication"
    ]
    assert grade3 == {"passed": True, "findings": []}
    assert await counts(demo) == before


async def upload(http: httpx.AsyncClient, token: str, data: bytes) -> str:
    response = await http.post(
        "/attachments",
        files={"file": ("scan.png", data, "image/png")},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["sha256"])


async def test_documents_go_with_the_application(
    gql: GraphQLClient, demo: Services, http: httpx.AsyncClient
) -> None:
    li = await gql.as_user("dr.li")
    assert li.token
    pid = await patient_id(demo, "P0002")
    scan = png_bytes("blue")
    digest = await upload(http, li.token, scan)
    # Not an image: refused in both languages, nothing kept.
    async with demo.db.session() as s:
        kept = await s.scalar(sa.select(sa.func.count()).select_from(Attachment))
    refused = await http.post(
        "/attachments",
        files={"file": ("scan.pdf", b"%PDF-1.4 not an image", "application/pdf")},
        headers={"Authorization": f"Bearer {li.token}"},
    )
    assert refused.status_code == 415
    assert refused.json()["error"]["messages"] == {
        "zh": "仅支持 JPEG、PNG、WebP 图片",
        "en": "only JPEG, PNG or WebP images are accepted",
    }
    async with demo.db.session() as s:
        assert await s.scalar(sa.select(sa.func.count()).select_from(Attachment)) == kept

    before = await counts(demo)
    unknown = "0" * 64
    err = await li.error(SUBMIT, {"i": application(pid, "51.23", attachments=[digest, unknown])})
    assert error_code(err) == "PRECHECK_FAILED"
    assert [f["code"] for f in err["extensions"]["findings"]] == ["ATTACHMENT_NOT_UPLOADED"]
    assert await counts(demo) == before

    created = (await li.data(SUBMIT, {"i": application(pid, "51.23", attachments=[digest])}))[
        "submitSurgeryApplication"
    ]
    app = (await li.data(APPLICATION, {"id": created["id"]}))["surgeryApplication"]
    assert app["attachments"] == [digest]
    assert app["procedure"] == {"name": "腹腔镜胆囊切除术", "grade": 3, "level": "provincial"}
    assert app["surgeon"] == {"displayName": "李医生"}
    # The approvers open the documents; others may not; only the filed ones are served.
    wang = await gql.as_user("chief.wang")
    document = (await wang.data(DOCUMENT, {"id": created["id"], "h": digest}))["surgeryDocument"]
    assert base64.b64decode(document["contentBase64"]) == scan
    assert (document["contentType"], document["sha256"]) == ("image/png", digest)
    qian = await gql.as_user("dr.qian")
    assert error_code(await qian.error(DOCUMENT, {"id": created["id"], "h": digest})) == "NOT_FOUND"
    other = await upload(http, li.token, png_bytes("red"))
    err = await wang.error(DOCUMENT, {"id": created["id"], "h": other})
    assert error_code(err) == "NOT_FOUND"


async def test_amend_and_resubmit_after_a_return(gql: GraphQLClient, demo: Services) -> None:
    li = await gql.as_user("dr.li")
    wang = await gql.as_user("chief.wang")
    pid = await patient_id(demo, "P0002")
    created = (await li.data(SUBMIT, {"i": application(pid, "51.23")}))["submitSurgeryApplication"]
    view = (await li.data(VIEW, {"id": created["id"]}))["approvalInstance"]
    assert (view["viewerCanWithdraw"], view["viewerCanResubmit"]) == (True, False)
    # Resubmitting what was not returned is refused and changes nothing.
    before = await counts(demo)
    err = await li.error(RESUBMIT, {"id": created["id"], "i": application(pid, "51.23")})
    assert error_code(err) == "CONFLICT"
    assert await counts(demo) == before

    [task] = await pending_for(wang, created["id"])
    await wang.data(RETURN, {"id": task, "c": "请补充术前讨论记录"})
    view = (await li.data(VIEW, {"id": created["id"]}))["approvalInstance"]
    assert view["status"] == "returned"
    assert (view["viewerCanWithdraw"], view["viewerCanResubmit"]) == (True, True)
    as_head = (await wang.data(VIEW, {"id": created["id"]}))["approvalInstance"]
    assert (as_head["viewerCanWithdraw"], as_head["viewerCanResubmit"]) == (False, False)

    # An amendment that fails the pre-check is refused as a whole.
    before = await counts(demo)
    err = await li.error(
        RESUBMIT, {"id": created["id"], "i": application(pid, "51.23", diagnosis=" ")}
    )
    assert error_code(err) == "PRECHECK_FAILED"
    assert await counts(demo) == before
    app = (await li.data(APPLICATION, {"id": created["id"]}))["surgeryApplication"]
    assert app["diagnosis"] == "胆囊结石伴慢性胆囊炎"

    amended = application(pid, "51.23", diagnosis="胆囊结石伴急性胆囊炎，已补充术前讨论记录")
    done = await li.data(RESUBMIT, {"id": created["id"], "i": amended, "c": "已补充"})
    assert done["resubmitSurgeryApplication"]["status"] == "running"
    app = (await li.data(APPLICATION, {"id": created["id"]}))["surgeryApplication"]
    assert app["diagnosis"] == "胆囊结石伴急性胆囊炎，已补充术前讨论记录"
    assert await pending_for(wang, created["id"])  # the head decides again
    view = (await li.data(VIEW, {"id": created["id"]}))["approvalInstance"]
    assert [e["action"] for e in view["history"]].count("resubmitted") == 1

    await li.data(WITHDRAW, {"id": created["id"]})
    view = (await li.data(VIEW, {"id": created["id"]}))["approvalInstance"]
    assert view["status"] == "withdrawn"
    assert (view["viewerCanWithdraw"], view["viewerCanResubmit"]) == (False, False)


async def test_what_an_approver_sees(gql: GraphQLClient, demo: Services) -> None:
    li = await gql.as_user("dr.li")
    wang = await gql.as_user("chief.wang")
    pid = await patient_id(demo, "P0002")
    created = (await li.data(SUBMIT, {"i": application(pid, "51.23")}))["submitSurgeryApplication"]
    [task] = await pending_for(wang, created["id"])
    view = (await wang.data(VIEW, {"id": created["id"]}))["approvalInstance"]
    assert {t["id"]: t["viewerCanDecide"] for t in view["tasks"]} == {task: True}
    as_surgeon = (await li.data(VIEW, {"id": created["id"]}))["approvalInstance"]
    assert {t["id"]: t["viewerCanDecide"] for t in as_surgeon["tasks"]} == {task: False}
    patient = view["patient"]
    assert (patient["name"], patient["gender"], patient["mrn"]) == ("张秀英", "F", "P0002")
    assert 50 <= patient["age"] <= 60  # born 1971-08-02
    assert view["historyVerified"] is True
    created_event = next(e for e in view["history"] if e["action"] == "task_created")
    assert created_event["person"] == {"displayName": "王主任"}
    assert created_event["step"] == {"name": "科主任审批"}
    assert all(len(e["hash"]) == 64 for e in view["history"])

    # The person picker: staff by name, never patients.
    found = (await wang.data(STAFF, {"s": "赵"}))["staff"]
    assert [p["username"] for p in found] == ["ma.zhao"]
    assert found[0]["department"]["name"]
    assert (await wang.data(STAFF, {"s": "周建国"}))["staff"] == []

    # An unknown person: "用户不存在", in each language, and the task stays.
    before = await counts(demo)
    err = await wang.error(TRANSFER, {"id": task, "u": "nobody"})
    assert error_code(err) == "NOT_FOUND"
    assert err["extensions"]["messages"]["zh"] == "用户不存在"
    assert err["extensions"]["messages"]["en"] == "user not found: nobody"
    assert await counts(demo) == before

    # An old link to a decided task still opens and shows the decision.
    await wang.data(DECIDE, {"id": task, "d": "APPROVE", "c": "同意手术"})
    old = (await wang.data(TASK, {"id": task}))["approvalTask"]
    assert old == {
        "id": task,
        "status": "approved",
        "comment": "同意手术",
        "instance": {"id": created["id"]},
    }
    qian = await gql.as_user("dr.qian")
    assert error_code(await qian.error(TASK, {"id": task})) == "NOT_FOUND"

    # Someone edits the history behind the server's back: the chain check says so.
    async with demo.db.transaction() as s:
        await s.execute(
            sa.update(AuditEvent)
            .where(
                AuditEvent.stream == f"approval:{created['id']}", AuditEvent.action == "approved"
            )
            .values(data={"comment": "驳回"})
        )
    view = (await wang.data(VIEW, {"id": created["id"]}))["approvalInstance"]
    assert view["historyVerified"] is False
