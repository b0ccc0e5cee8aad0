"""Schemathesis over the GraphQL schema, against a real API process.

Every root query and mutation (the test checks the list against the schema) is sent
anonymously, as a staff member (pt.sun, therapist), as admin and as a patient, with
schemathesis's generated arguments plus the inputs no form produces (date-only and
out-of-range datetimes, impossible dates). Each must be answered: never HTTP 500, never
INTERNAL, every error with a code; and a mutation that was refused must not have added
or removed a row anywhere. Bounded: EXAMPLES examples per operation and caller.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import hypothesis_graphql.nodes as nodes
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.db import Database
from api.graphql.schema import schema as bedside_schema
from api.services import Services
from tests.conftest import DEMO_PASSWORD
from tests.security.live import api_process

# examples per operation for each caller: (username or None for anonymous, examples)
EXAMPLES = ((None, 2), ("pt.sun", 2), ("admin", 1), ("patient.zhou", 1))
# Written by requests that are refused, on purpose: failed-login counters, access logs.
WRITTEN_WHEN_REFUSED = {"login_throttle", "access_log", "alembic_version"}

schemathesis.graphql.scalar(
    "DateTime",
    st.sampled_from(
        [
            "2026-01-05T09:00:00+08:00",
            "2025-12-31T23:59:59Z",
            "bad",
            "2026-01-05",  # a date alone
            "9999-12-31T23:59:59-12:00",  # past the calendar in UTC
            "0001-01-01T00:00:00+14:00",
        ]
    ).map(nodes.String),
)
schemathesis.graphql.scalar(
    "Date",
    st.one_of(st.dates().map(str), st.sampled_from(["2026-13-45", "0001-01-01", "9999-12-31"])).map(
        nodes.String
    ),
)
schemathesis.graphql.scalar("JSON", st.sampled_from(["{}", "x", ""]).map(nodes.String))


async def row_counts(db: Database) -> dict[str, int]:
    async with db.session() as session:
        tables = (
            (
                await session.execute(
                    sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                )
            )
            .scalars()
            .all()
        )
        tables = [t for t in tables if t not in WRITTEN_WHEN_REFUSED]
        sql = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM \"{t}\"" for t in tables)
        return {name: count for name, count in (await session.execute(sa.text(sql))).all()}


async def test_graphql_fuzz(demo: Services, tmp_path: Path) -> None:
    if not demo.db.is_postgres:
        return
    loop = asyncio.get_running_loop()
    operations = [
        result.ok()
        for result in schemathesis.graphql.from_file(bedside_schema.as_str()).get_all_operations()
    ]
    problems: list[str] = []

    with api_process(demo.settings, log=tmp_path / "api.log") as base:
        tokens: dict[str | None, str | None] = {None: None}
        async with httpx.AsyncClient(base_url=base) as http:
            for username in ("admin", "pt.sun", "patient.zhou"):
                login = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }"
                body = (
                    await http.post(
                        "/graphql",
                        json={"query": login, "variables": {"u": username, "p": DEMO_PASSWORD}},
                    )
                ).json()
                tokens[username] = body["data"]["login"]["token"]

        def counts() -> dict[str, int]:
            return asyncio.run_coroutine_threadsafe(row_counts(demo.db), loop).result(30)

        def fuzz(operation: schemathesis.APIOperation, caller: str | None, examples: int) -> None:
            is_mutation = operation.label.startswith("Mutation.")
            token = tokens[caller]

            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy())
            def run(case: schemathesis.Case) -> None:
                before = counts() if is_mutation else None
                headers = {"authorization": f"Bearer {token}"} if token else {}
                response = case.call(base_url=base + "/graphql", headers=headers, timeout=30)
                where = f"{operation.label} as {caller or 'anonymous'}"
                if response.status_code >= 500:
                    problems.append(f"{where}: HTTP {response.status_code}: {case.body}")
                    return
                payload = response.json()
                errors = payload.get("errors") or []
                for error in errors:
                    code = (error.get("extensions") or {}).get("code")
                    if code is None or code == "INTERNAL":
                        problems.append(f"{where}: {code}: {error.get('message')} for {case.body}")
                refused = errors and not any(
                    v is not None for v in (payload.get("data") or {}).values()
                )
                if is_mutation and refused:
                    after = counts()
                    changed = {
                        t: (before[t], after.get(t)) for t in before if before[t] != after.get(t)
                    }
                    if changed:
                        problems.append(f"{where}: refused but rows changed {changed}: {case.body}")

            run()

        await asyncio.to_thread(
            lambda: [fuzz(op, caller, n) for op in operations for caller, n in EXAMPLES]
        )
    # Every root field of the schema was fuzzed.
    graphql_schema = bedside_schema._schema
    mutation_type = graphql_schema.mutation_type
    assert mutation_type is not None
    root_fields = {f"Query.{name}" for name in graphql_schema.query_type.fields} | {
        f"Mutation.{name}" for name in mutation_type.fields
    }
    assert {op.label for op in operations} == root_fields
    assert problems == [], "\n".join(problems[:20])
