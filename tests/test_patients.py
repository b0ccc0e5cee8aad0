"""Who sees which patient, masked identifiers, and the access log."""

from __future__ import annotations

import sqlalchemy as sa

from api.models.audit import AccessLog
from api.services import Services
from tests.conftest import GraphQLClient, error_code

LIST = "query($s: String) { patients(search: $s) { id mrn name idNumber phone } }"


async def test_department_staff_see_their_department_masked(
    gql: GraphQLClient, demo: Services
) -> None:
    li = await gql.as_user("dr.li")
    rows = (await li.data(LIST))["patients"]
    assert {r["mrn"] for r in rows} == {"P0002", "P0003", "P0004"}  # general surgery only
    for r in rows:
        assert "*" in r["idNumber"] and "*" in r["phone"]
    async with demo.db.session() as session:
        logged = (
            (await session.execute(sa.select(AccessLog).where(AccessLog.resource == "patients")))
            .scalars()
            .all()
        )
    assert len(logged) == 1 and logged[0].ip == "127.0.0.1"


async def test_search_by_phone_uses_the_lookup_hash(gql: GraphQLClient) -> None:
    zhao = await gql.as_user("ma.zhao")
    rows = (await zhao.data(LIST, {"s": "13905532345"}))["patients"]
    assert [r["mrn"] for r in rows] == ["P0002"]


async def test_patient_sees_only_self_and_therapist_not_other_department(
    gql: GraphQLClient,
) -> None:
    zhou = await gql.as_user("patient.zhou")
    assert [r["mrn"] for r in (await zhou.data(LIST))["patients"]] == ["P0001"]
    sun = await gql.as_user("pt.sun")
    surgery_patient = (await (await gql.as_user("ma.zhao")).data(LIST, {"s": "P0002"}))["patients"][
        0
    ]["id"]
    error = await sun.error(
        "query($id: ID!) { patient(id: $id) { name } }", {"id": surgery_patient}
    )
    assert error_code(error) == "NOT_FOUND"  # another department's patient answers like no one
