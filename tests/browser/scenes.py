"""Scenes set up through the public API before the browser takes over."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


async def graphql(
    base: str, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> dict[str, Any]:
    """Set a scene through the public API, as another user of the hospital would."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        body = (
            await client.post(
                "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
            )
        ).json()
    assert not body.get("errors"), body["errors"]
    return dict(body["data"])


async def token_for(base: str, username: str) -> str:
    data = await graphql(
        base,
        'mutation($u: String!) { login(username: $u, password: "bedside-demo") { token } }',
        {"u": username},
    )
    return str(data["login"]["token"])


async def physio_slots(base: str, token: str) -> list[dict[str, Any]]:
    today = dt.date.today()
    return (
        await graphql(
            base,
            'query($f: Date!, $t: Date!) { availableSlots(itemCode: "PHYSIO", from: $f, to: $t) { id startsAt remaining } }',
            {"f": today.isoformat(), "t": (today + dt.timedelta(days=10)).isoformat()},
            token,
        )
    )["availableSlots"]


async def physio_order_for(base: str, token: str, patient_name: str) -> str:
    patients = (await graphql(base, "{ patients { id name } }", token=token))["patients"]
    patient = next(p for p in patients if p["name"] == patient_name)
    existing = await graphql(
        base,
        "query($p: ID!) { treatmentOrders(patientId: $p) { id item { code } } }",
        {"p": patient["id"]},
        token,
    )
    for order in existing["treatmentOrders"]:
        if order["item"]["code"] == "PHYSIO":
            return str(order["id"])
    created = await graphql(
        base,
        'mutation($p: ID!) { createTreatmentOrder(input: {patientId: $p, itemCode: "PHYSIO", sessions: 5, paid: true}) { id } }',
        {"p": patient["id"]},
        token,
    )
    return str(created["createTreatmentOrder"]["id"])


async def book_physio(base: str, patient_names: list[str]) -> tuple[str, str, list[str]]:
    """Book the patients (by pt.sun, at the desk) into one free physiotherapy slot.

    Returns (the slot's Shanghai day, the slot id, the appointment ids)."""
    token = await token_for(base, "pt.sun")
    orders = [await physio_order_for(base, token, name) for name in patient_names]
    slot = next(s for s in await physio_slots(base, token) if s["remaining"] >= 2)
    ids = []
    for order_id in orders:
        booked = await graphql(
            base,
            "mutation($s: ID!, $o: ID) { bookAppointment(slotId: $s, orderId: $o) { id } }",
            {"s": slot["id"], "o": order_id},
            token,
        )
        ids.append(str(booked["bookAppointment"]["id"]))
    day = dt.datetime.fromisoformat(slot["startsAt"]).astimezone(SHANGHAI).date().isoformat()
    return day, str(slot["id"]), ids


async def submit_grade4_application(base: str) -> dict[str, Any]:
    """dr.qian applies for a grade-4 operation on 张秀英 (general surgery)."""
    token = await token_for(base, "dr.qian")
    patients = (await graphql(base, "{ patients { id name } }", token=token))["patients"]
    patient = next(p for p in patients if p["name"] == "张秀英")
    planned = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).isoformat()
    data = await graphql(
        base,
        """mutation($p: ID!, $at: DateTime!) { submitSurgeryApplication(input: {
            patientId: $p, procedureCode: "52.7", plannedAt: $at, emergency: false,
            diagnosis: "胰头占位 / pancreatic head mass", anesthesia: "全麻 / general",
            preopAssessment: "ASA II，心肺功能可耐受 / ASA II", consentSigned: true
        }) { id status tasks { id status assignee { username } } } }""",
        {"p": patient["id"], "at": planned},
        token,
    )
    return dict(data["submitSurgeryApplication"])


async def submit_emergency_application(base: str) -> dict[str, Any]:
    """dr.li applies for an emergency appendectomy on 王德明, to start within the hour."""
    token = await token_for(base, "dr.li")
    patients = (await graphql(base, "{ patients { id name } }", token=token))["patients"]
    patient = next(p for p in patients if p["name"] == "王德明")
    planned = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    data = await graphql(
        base,
        """mutation($p: ID!, $at: DateTime!) { submitSurgeryApplication(input: {
            patientId: $p, procedureCode: "47.09", plannedAt: $at, emergency: true,
            diagnosis: "急性化脓性阑尾炎", anesthesia: "全身麻醉",
            preopAssessment: "ASA I级，急诊手术指征明确", consentSigned: true
        }) { id status tasks { id status assignee { username } } } }""",
        {"p": patient["id"], "at": planned},
        token,
    )
    return dict(data["submitSurgeryApplication"])
