"""智能预审: every finding at once, with its code and field; nothing routed on failure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from api.auth import SYSTEM_ACTOR
from api.domain import privileges
from api.domain.patients import raise_flag
from api.models.approvals import ApprovalInstance
from api.models.audit import AuditEvent
from api.models.patients import Patient
from api.models.people import User
from api.models.surgery import SurgeryApplication
from api.services import Services
from tests.conftest import GraphQLClient, error_code
from tests.surgery.helpers import SUBMIT, application, patient_id


async def counts(services: Services) -> tuple[int, int, int]:
    async with services.db.session() as s:
        return (
            int(await s.scalar(sa.select(sa.func.count()).select_from(ApprovalInstance)) or 0),
            int(await s.scalar(sa.select(sa.func.count()).select_from(SurgeryApplication)) or 0),
            int(
                await s.scalar(
                    sa.select(sa.func.count())
                    .select_from(AuditEvent)
                    .where(AuditEvent.stream.like("approval:%"))
                )
                or 0
            ),
        )


def codes(err: dict) -> dict[str, str | None]:
    return {f["code"]: f["field"] for f in err["extensions"]["findings"]}


async def test_missing_materials_are_all_reported(gql: GraphQLClient, demo: Services) -> None:
    li = await gql.as_user("dr.li")
    pid = await patient_id(demo, "P0002")
    before = await counts(demo)
    err = await li.error(
        SUBMIT,
        {
            "i": application(
                pid,
                "47.09",
                diagnosis=" ",
                anesthesia="",
                preopAssessment=None,
                consentSigned=False,
            )
        },
    )
    assert error_code(err) == "PRECHECK_FAILED"
    assert codes(err) == {
        "MISSING_DIAGNOSIS": "diagnosis",
        "MISSING_ANESTHESIA": "anesthesia",
        "MISSING_PREOP_ASSESSMENT": "preopAssessment",
        "CONSENT_NOT_SIGNED": "consentSigned",
    }
    assert all(" / " in f["message"] for f in err["extensions"]["findings"])  # zh / en
    assert await counts(demo) == before


async def test_no_privilege_for_the_grade(gql: GraphQLClient, demo: Services) -> None:
    li = await gql.as_user("dr.li")  # up to grade 3
    before = await counts(demo)
    err = await li.error(SUBMIT, {"i": application(await patient_id(demo, "P0002"), "50.3")})
    assert error_code(err) == "PRECHECK_FAILED" and codes(err) == {
        "NO_PRIVILEGE": "surgeonUsername"
    }
    assert await counts(demo) == before


async def test_suspended_surgeon(gql: GraphQLClient, demo: Services) -> None:
    async with demo.db.transaction() as s:
        li = (await s.execute(sa.select(User).where(User.username == "dr.li"))).scalar_one()
        now = datetime.now(UTC)
        await privileges.suspend_privileges(
            s,
            li.id,
            scope="surgery",
            reason="下乡支援",
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(days=30),
            actor=SYSTEM_ACTOR,
            source="manual",
        )
    before = await counts(demo)
    err = await (await gql.as_user("dr.li")).error(
        SUBMIT, {"i": application(await patient_id(demo, "P0002"), "47.09")}
    )
    assert codes(err) == {"PRIVILEGE_SUSPENDED": "surgeonUsername"}
    assert "下乡支援" in err["extensions"]["findings"][0]["message"]
    assert await counts(demo) == before
    # After the suspension ends the same application passes.
    later = (datetime.now(UTC) + timedelta(days=31)).isoformat()
    ok = await (await gql.as_user("dr.li")).data(
        SUBMIT, {"i": application(await patient_id(demo, "P0002"), "47.09", plannedAt=later)}
    )
    assert ok["submitSurgeryApplication"]["status"] == "running"


async def test_open_contraindication(gql: GraphQLClient, demo: Services) -> None:
    async with demo.db.transaction() as s:
        patient = (await s.execute(sa.select(Patient).where(Patient.mrn == "P0003"))).scalar_one()
        await raise_flag(
            s, patient, code="ANTICOAG", description="术前未停用华法林", actor=SYSTEM_ACTOR
        )
    before = await counts(demo)
    err = await (await gql.as_user("dr.li")).error(
        SUBMIT, {"i": application(await patient_id(demo, "P0003"), "51.23")}
    )
    assert (
        codes(err) == {"CONTRAINDICATION": "patientId"}
        and "ANTICOAG" in err["extensions"]["findings"][0]["message"]
    )
    assert await counts(demo) == before


async def test_several_rules_fail_together(gql: GraphQLClient, demo: Services) -> None:
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    err = await (await gql.as_user("dr.li")).error(
        SUBMIT,
        {
            "i": application(
                await patient_id(demo, "P0002"), "52.7", plannedAt=past, consentSigned=False
            )
        },
    )
    assert codes(err) == {
        "CONSENT_NOT_SIGNED": "consentSigned",
        "PLANNED_IN_PAST": "plannedAt",
        "NO_PRIVILEGE": "surgeonUsername",
    }


async def test_unknown_procedure_and_malformed_date(gql: GraphQLClient, demo: Services) -> None:
    li = await gql.as_user("dr.li")
    pid = await patient_id(demo, "P0002")
    before = await counts(demo)
    err = await li.error(SUBMIT, {"i": application(pid, "99.99")})
    assert error_code(err) == "PRECHECK_FAILED" and codes(err) == {
        "UNKNOWN_PROCEDURE": "procedureCode"
    }
    err = await li.error(SUBMIT, {"i": application(pid, "47.09", plannedAt="明天上午")})
    assert error_code(err) == "VALIDATION" and "plannedAt" in err["message"]
    err = await li.error(
        SUBMIT, {"i": application(pid, "47.09", plannedAt="2026-13-45T08:00:00+08:00")}
    )
    assert error_code(err) == "VALIDATION"
    err = await li.error(SUBMIT, {"i": application("abc", "47.09")})
    assert error_code(err) == "VALIDATION" and err["extensions"]["field"] == "patientId"
    assert await counts(demo) == before


async def test_patient_of_another_department_and_submitting_for_others(
    gql: GraphQLClient, demo: Services
) -> None:
    li = await gql.as_user("dr.li")
    err = await li.error(
        SUBMIT, {"i": application(await patient_id(demo, "P0005"), "47.09")}
    )  # a REHAB patient
    assert codes(err) == {"PATIENT_NOT_VISIBLE": "patientId"}
    # A surgeon may not apply for a colleague; the department head may.
    assert (
        error_code(
            await li.error(
                SUBMIT,
                {
                    "i": application(
                        await patient_id(demo, "P0002"), "47.09", surgeonUsername="dr.qian"
                    )
                },
            )
        )
        == "FORBIDDEN"
    )
    chief = await gql.as_user("chief.wang")
    ok = (
        await chief.data(
            SUBMIT,
            {"i": application(await patient_id(demo, "P0002"), "47.09", surgeonUsername="dr.qian")},
        )
    )["submitSurgeryApplication"]
    assert [t["assignee"]["username"] for t in ok["tasks"]] == ["chief.wang"]
    # Not a surgeon at all: a therapist has no business here.
    assert (
        error_code(
            await (await gql.as_user("pt.sun")).error(
                SUBMIT, {"i": application(await patient_id(demo, "P0005"), "47.09")}
            )
        )
        == "FORBIDDEN"
    )
