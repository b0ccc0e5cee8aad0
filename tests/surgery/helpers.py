"""Shared GraphQL documents and short-cuts for the surgery tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from api.models.patients import Patient
from api.services import Services
from tests.conftest import GraphQLClient

SUBMIT = """
mutation($i: SurgeryApplicationInput!, $k: String) { submitSurgeryApplication(input: $i, idempotencyKey: $k) {
  id status dueAt kind precheck { passed findings { code message field } }
  tasks { id assignee { username } status } } }
"""
MY_TASKS = "query { myTasks { id status dueAt instance { id kind status } } }"
DECIDE = """
mutation($id: ID!, $d: Decision!, $c: String) { decideTask(taskId: $id, decision: $d, comment: $c) { id status } }
"""
INSTANCE = """
query($id: ID!) { approvalInstance(id: $id) { id kind status dueAt createdAt blockedReason
  tasks { id assignee { username } status step { id } }
  history { action actor { username } at hash data } } }
"""


async def patient_id(services: Services, mrn: str) -> str:
    async with services.db.session() as s:
        return str(await s.scalar(sa.select(Patient.id).where(Patient.mrn == mrn)))


def application(pid: str, code: str, **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "patientId": pid,
        "procedureCode": code,
        "plannedAt": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
        "emergency": False,
        "diagnosis": "胆囊结石伴慢性胆囊炎",
        "anesthesia": "全身麻醉",
        "preopAssessment": "ASA II级，心肺功能可耐受手术",
        "consentSigned": True,
    }
    values.update(overrides)
    return values


async def pending_for(client: GraphQLClient, instance_id: str) -> list[str]:
    """The caller's pending task ids on one instance."""
    tasks = (await client.data(MY_TASKS))["myTasks"]
    return [
        t["id"] for t in tasks if t["instance"]["id"] == instance_id and t["status"] == "pending"
    ]


async def approve(client: GraphQLClient, instance_id: str, comment: str = "同意") -> None:
    ids = await pending_for(client, instance_id)
    assert ids, "no pending task for this user"
    for task_id in ids:
        assert (await client.data(DECIDE, {"id": task_id, "d": "APPROVE", "c": comment}))[
            "decideTask"
        ]["status"] == "approved"


def pending_assignees(instance: dict[str, Any]) -> list[str]:
    return sorted(t["assignee"]["username"] for t in instance["tasks"] if t["status"] == "pending")
