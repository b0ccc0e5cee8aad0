"""Patients' identifiers never reach an error or a log line through SQL parameters: what
someone typed into the patient search (an ID number) is not printed when the statement
fails, whichever logger reports it."""

from __future__ import annotations

import logging
import traceback

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError

from api.logs import JsonFormatter
from api.services import Services
from tests.conftest import GraphQLClient

ID_NUMBER = "340202196203141234"


async def test_a_failed_patient_search_logs_no_parameter(
    gql: GraphQLClient, demo: Services, caplog: pytest.LogCaptureFixture
) -> None:
    sun = await gql.as_user("pt.sun")
    caplog.set_level(logging.DEBUG)
    # A NUL byte cannot be stored in PostgreSQL text: the statement itself fails.
    answer = await sun.execute(
        "query($s: String) { patients(search: $s) { id } }", {"s": ID_NUMBER + "\x00"}
    )
    assert answer.get("errors") or answer["data"]["patients"] == []
    formatter = JsonFormatter()
    lines = [formatter.format(record) for record in caplog.records]
    assert not [line for line in lines if ID_NUMBER in line]
    assert ID_NUMBER not in str(answer)


async def test_database_errors_hide_their_parameters(demo: Services) -> None:
    """The engine itself: the error names the statement, never its values."""
    with pytest.raises(DBAPIError) as failed:
        async with demo.db.session() as session:
            await session.execute(
                sa.text("SELECT CAST(:v AS integer)"), {"v": "身份证 " + ID_NUMBER}
            )
    printed = "".join(traceback.format_exception(failed.value))
    assert ID_NUMBER not in printed and ID_NUMBER not in repr(failed.value)
    assert "hidden" in str(failed.value) and "query argument $1" in printed
