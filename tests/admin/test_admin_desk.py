"""The administrator's desk over GraphQL: users and roles, department heads, unlock and
one-time passwords, imports from an uploaded file (checked, then confirmed), the access
log by patient, person and time with its audited export, and the chains' verification."""

from __future__ import annotations

import base64

import sqlalchemy as sa

from api.models.audit import AccessLog, AuditEvent
from api.models.base import utcnow
from api.models.people import Department, User
from api.services import Services
from tests.conftest import GraphQLClient, error_code

USERS = "query($s: String) { adminUsers(search: $s) { id username displayName roles isActive lockedUntil mustChangePassword department { code } } }"
UPDATE = """mutation($u: ID!, $n: String!, $r: [String!]!, $d: ID) {
  updateUser(userId: $u, displayName: $n, roles: $r, departmentId: $d) { username displayName roles department { code } } }"""
RESET = "mutation($u: ID!) { resetPassword(userId: $u) { oneTimePassword user { mustChangePassword } } }"
UNLOCK = "mutation($u: ID!) { unlockUser(userId: $u) { lockedUntil } }"
DEACTIVATE = 'mutation($u: ID!) { deactivateUser(userId: $u, reason: "离职") { isActive } }'
PREVIEW = """mutation($k: String!, $f: String!, $c: String!) { previewImport(kind: $k, filename: $f, contentBase64: $c) {
  applied created updated unchanged rows { row action what } errors { row column message } } }"""
CONFIRM = PREVIEW.replace("previewImport", "confirmImport")
LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }"


async def _count(services: Services, model: type, *where: object) -> int:
    async with services.db.session() as session:
        stmt = sa.select(sa.func.count()).select_from(model).where(*where)
        return int((await session.execute(stmt)).scalar_one())


async def _user(services: Services, username: str) -> User:
    async with services.db.session() as session:
        return (
            await session.execute(sa.select(User).where(User.username == username))
        ).scalar_one()


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode()


async def test_admin_searches_and_edits_roles_and_department(
    gql: GraphQLClient, demo: Services
) -> None:
    admin = await gql.as_user("admin")
    found = (await admin.data(USERS, {"s": "孙"}))["adminUsers"]
    assert [u["username"] for u in found] == ["pt.sun"]
    sun = found[0]
    assert sun["roles"] == ["therapist"] and sun["department"]["code"] == "REHAB"

    async with demo.db.session() as session:
        gs = (
            await session.execute(sa.select(Department).where(Department.code == "GS"))
        ).scalar_one()
    changed = (
        await admin.data(
            UPDATE, {"u": sun["id"], "n": "孙理疗", "r": ["therapist", "nurse"], "d": str(gs.id)}
        )
    )["updateUser"]
    assert changed == {
        "username": "pt.sun",
        "displayName": "孙理疗",
        "roles": ["therapist", "nurse"],
        "department": {"code": "GS"},
    }
    assert (
        await _count(
            demo,
            AuditEvent,
            AuditEvent.stream == f"user:{sun['id']}",
            AuditEvent.action == "updated",
        )
        == 1
    )

    bad = await admin.error(UPDATE, {"u": sun["id"], "n": "孙", "r": ["wizard"], "d": None})
    assert error_code(bad) == "VALIDATION" and bad["extensions"]["field"] == "roles"
    assert (await _user(demo, "pt.sun")).roles == ["therapist", "nurse"]


async def test_only_the_admin_manages_users(gql: GraphQLClient, demo: Services) -> None:
    sun_id = str((await _user(demo, "pt.sun")).id)
    before = await _count(demo, AuditEvent)
    for username in ("ma.zhao", "chief.wang", "patient.zhou"):
        client = await gql.as_user(username)
        assert error_code(await client.error(USERS, {"s": None})) == "FORBIDDEN"
        assert error_code(await client.error(RESET, {"u": sun_id})) == "FORBIDDEN"
        assert error_code(await client.error(DEACTIVATE, {"u": sun_id})) == "FORBIDDEN"
        assert (
            error_code(
                await client.error(PREVIEW, {"k": "departments", "f": "d.csv", "c": b64("x")})
            )
            == "FORBIDDEN"
        )
    assert await _count(demo, AuditEvent) == before
    assert (await _user(demo, "pt.sun")).is_active


async def test_unlock_and_one_time_password_that_must_be_changed(
    gql: GraphQLClient, demo: Services
) -> None:
    for _ in range(8):  # lock dr.li out with wrong passwords
        await gql.execute(LOGIN, {"u": "dr.li", "p": "wrong-password"})
    li = await _user(demo, "dr.li")
    assert li.locked_until is not None and li.locked_until > utcnow()
    admin = await gql.as_user("admin")
    listed = (await admin.data(USERS, {"s": "dr.li"}))["adminUsers"][0]
    assert listed["lockedUntil"] is not None
    assert (await admin.data(UNLOCK, {"u": str(li.id)}))["unlockUser"]["lockedUntil"] is None
    assert (await gql.as_user("dr.li")).token  # the demo password works again

    reset = (await admin.data(RESET, {"u": str(li.id)}))["resetPassword"]
    password = reset["oneTimePassword"]
    assert reset["user"]["mustChangePassword"] is True and len(password) == 12
    # The old password is gone; the one-time one signs in but only to change it.
    old = await gql.execute(LOGIN, {"u": "dr.li", "p": "bedside-demo"})
    assert error_code(old["errors"][0]) == "UNAUTHENTICATED"
    client = await gql.as_user("dr.li", password)
    assert error_code(await client.error("{ myTasks { id } }")) == "PASSWORD_CHANGE_REQUIRED"
    assert (await client.data("{ me { mustChangePassword } }"))["me"]["mustChangePassword"] is True
    events = await _count(
        demo,
        AuditEvent,
        AuditEvent.stream == f"user:{li.id}",
        AuditEvent.action == "password_reset",
    )
    assert events == 1
    async with demo.db.session() as session:
        data = (
            await session.execute(
                sa.select(AuditEvent.data).where(AuditEvent.action == "password_reset")
            )
        ).scalar_one()
    assert password not in str(data)


async def test_deactivating_signs_the_user_out(gql: GraphQLClient, demo: Services) -> None:
    sun = await gql.as_user("pt.sun")
    admin = await gql.as_user("admin")
    sun_id = str((await _user(demo, "pt.sun")).id)
    assert (await admin.data(DEACTIVATE, {"u": sun_id}))["deactivateUser"]["isActive"] is False
    assert error_code(await sun.error("{ me { id } }")) == "UNAUTHENTICATED"
    admin_id = str((await _user(demo, "admin")).id)
    assert error_code(await admin.error(DEACTIVATE, {"u": admin_id})) == "VALIDATION"


async def test_department_head(gql: GraphQLClient, demo: Services) -> None:
    admin = await gql.as_user("admin")
    departments = (await admin.data("{ adminDepartments { id code head { username } } }"))[
        "adminDepartments"
    ]
    rehab = next(d for d in departments if d["code"] == "REHAB")
    assert rehab["head"]["username"] == "chief.he"
    sun_id = str((await _user(demo, "pt.sun")).id)
    li_id = str((await _user(demo, "dr.li")).id)
    q = "mutation($d: ID!, $u: ID) { setDepartmentHead(departmentId: $d, userId: $u) { head { username } } }"
    assert (await admin.data(q, {"d": rehab["id"], "u": sun_id}))["setDepartmentHead"]["head"][
        "username"
    ] == "pt.sun"
    wrong = await admin.error(q, {"d": rehab["id"], "u": li_id})  # general surgery
    assert error_code(wrong) == "VALIDATION"
    async with demo.db.session() as session:
        head = (
            await session.execute(
                sa.select(Department.head_user_id).where(Department.code == "REHAB")
            )
        ).scalar_one()
    assert str(head) == sun_id


async def test_import_is_checked_then_confirmed(gql: GraphQLClient, demo: Services) -> None:
    admin = await gql.as_user("admin")
    text = "科室编码 code,科室名称 name,英文名称 English name\nGS,普外科,General Surgery\nNEU,神经内科,Neurology\n"
    before = await _count(demo, Department)
    preview = (await admin.data(PREVIEW, {"k": "departments", "f": "科室.csv", "c": b64(text)}))[
        "previewImport"
    ]
    assert preview["applied"] is False and preview["errors"] == []
    assert [(r["row"], r["action"]) for r in preview["rows"]] == [(2, "unchanged"), (3, "create")]
    assert await _count(demo, Department) == before  # a preview writes nothing

    done = (await admin.data(CONFIRM, {"k": "departments", "f": "科室.csv", "c": b64(text)}))[
        "confirmImport"
    ]
    assert done["applied"] is True and done["created"] == 1
    assert await _count(demo, Department) == before + 1
    again = (await admin.data(CONFIRM, {"k": "departments", "f": "科室.csv", "c": b64(text)}))[
        "confirmImport"
    ]
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 2)


async def test_a_failing_row_is_named_and_nothing_is_written(
    gql: GraphQLClient, demo: Services
) -> None:
    admin = await gql.as_user("admin")
    text = "科室编码 code,科室名称 name,英文名称 English name\nCAR,心内科,Cardiology\n,无编码,No code\n"
    before = await _count(demo, Department)
    result = (await admin.data(CONFIRM, {"k": "departments", "f": "d.csv", "c": b64(text)}))[
        "confirmImport"
    ]
    assert result["applied"] is False
    assert [(e["row"], e["column"]) for e in result["errors"]] == [(3, "科室编码")]
    assert await _count(demo, Department) == before

    wrong_type = await admin.error(PREVIEW, {"k": "departments", "f": "d.txt", "c": b64(text)})
    assert (
        error_code(wrong_type) == "VALIDATION" and wrong_type["extensions"]["field"] == "filename"
    )
    huge = base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()
    too_big = await admin.execute(PREVIEW, {"k": "departments", "f": "d.csv", "c": huge})
    assert error_code(too_big["errors"][0]) == "VALIDATION"
    assert await _count(demo, Department) == before


async def test_access_log_by_person_and_time_and_its_export(
    gql: GraphQLClient, demo: Services
) -> None:
    sun = await gql.as_user("pt.sun")
    await sun.data('{ patients(search: "周") { id } }')
    zhao = await gql.as_user("ma.zhao")
    sun_id = str((await _user(demo, "pt.sun")).id)
    q = "query($u: ID, $f: DateTime, $t: DateTime) { accessLog(userId: $u, from: $f, to: $t) { resource interface ip patientIds actor { username } } }"
    rows = (await zhao.data(q, {"u": sun_id}))["accessLog"]
    assert rows and all(r["actor"]["username"] == "pt.sun" for r in rows)
    assert any(
        r["interface"] == "patients" and r["patientIds"] and r["ip"] == "127.0.0.1" for r in rows
    )
    assert (await zhao.data(q, {"u": sun_id, "t": "2020-01-01T00:00:00Z"}))["accessLog"] == []
    backwards = await zhao.error(q, {"f": "2026-01-02T00:00:00Z", "t": "2026-01-01T00:00:00Z"})
    assert error_code(backwards) == "VALIDATION"

    exports = await _count(
        demo, AccessLog, AccessLog.action == "export", AccessLog.resource == "accessLog"
    )
    export = (
        await zhao.data(
            "mutation($u: ID) { exportAccessLog(userId: $u) { filename content } }", {"u": sun_id}
        )
    )["exportAccessLog"]
    assert export["filename"].endswith(".csv")
    lines = export["content"].lstrip("\ufeff").splitlines()
    assert lines[0].startswith("时间 time,人员 who") and "pt.sun" in lines[1]
    assert (
        await _count(
            demo, AccessLog, AccessLog.action == "export", AccessLog.resource == "accessLog"
        )
        == exports + 1
    )

    li = await gql.as_user("dr.li")
    assert error_code(await li.error(q, {"u": sun_id})) == "FORBIDDEN"
    assert error_code(await li.error("mutation { exportAccessLog { content } }")) == "FORBIDDEN"


async def test_audit_verification_in_the_app(gql: GraphQLClient, demo: Services) -> None:
    admin = await gql.as_user("admin")
    result = (
        await admin.data("{ auditVerification { checkedAt intact problems { stream reason } } }")
    )["auditVerification"]
    assert result["intact"] is True and result["problems"] == [] and result["checkedAt"]
    async with demo.db.transaction() as session:
        event = (
            await session.execute(sa.select(AuditEvent).order_by(AuditEvent.id).limit(1))
        ).scalar_one()
        await session.execute(
            sa.update(AuditEvent).where(AuditEvent.id == event.id).values(action="edited")
        )
        stream = event.stream
    broken = (await admin.data("{ auditVerification { intact problems { stream } } }"))[
        "auditVerification"
    ]
    assert broken["intact"] is False and broken["problems"][0]["stream"] == stream
    zhao = await gql.as_user("ma.zhao")
    assert error_code(await zhao.error("{ auditVerification { intact } }")) == "FORBIDDEN"
