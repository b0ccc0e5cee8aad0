"""The fleet on one machine: PostgreSQL, Redis, 2 API processes, 2 workers, mixed load.

    .venv/bin/python bench/fleet.py [--users 500] [--seconds 180] [--ramp 30] [--speed 1] [--apis 2] [--workers 2]

Starts a private PostgreSQL cluster and Redis on loopback ports (never the shared ones),
migrates, loads the demo hospital plus bulk therapists, patients with paid orders and
bookable slots, then runs `bedside serve` twice and `bedside worker` twice. Simulated
users (an asyncio task each, spread over both API processes) arrive one after another
over the first `--ramp` seconds, sign in, and then work at the pace of the people they
stand for. A cycle is a wait (treating a patient, walking, reading), then the cycle's
requests with a short pause between them; both drawn uniformly:

    users       share  wait s   pause s  requests per cycle            offers (500 users)
    therapists   40 %  20-60    2-5      myWorklist, then syncPush     200 x 2 / 43.5 s =  9.2/s
    patients     40 %  30-90    5-20     availableSlots, then          200 x 2 / 72.5 s =  5.5/s
                                         bookAppointment
    approvers    10 %  10-30    2-8      myTasks, then decideTask       50 x 2 / 25 s   =  4.0/s
    surgeons     10 %  60-240   -        submitSurgeryApplication       50 x 1 / 150 s  =  0.3/s

that is up to 19 requests/s once everyone is in (an approver with nothing pending sends
only myTasks), the load of a large rehabilitation department and its outpatients, not of
a load generator. The script prints this table (from PACES) with the numbers it used.
`--speed N` divides every wait and pause by N: a stress test past the ward's pace, where
requests queue (latency grows) and still none may fail.

- therapists `syncPush` an `updatePatient` on their own patient (the allergy list: the
  client remembers the last value acknowledged);
- patients book a slot with an idempotency key; one in four wants "tomorrow, about this
  time", so the day-before reminder of that booking falls due during the run;
- approvers sign in as the demo chain (several devices per person) and approve a pending
  task, keyed by person and task, so two devices tapping the same task make one decision;
- surgeons' applications create the approvers' tasks;
- reminders: every booking and decision writes notices to the outbox, every booking a
  day-before reminder; the two workers dispatch them (the API kicks them through Redis,
  their sweeps send what falls due). After the run the script waits (up to a minute) for
  the outbox to drain: a due notice still unsent then fails the run.

Prints per operation: count, p50/p95/p99 latency; throughput over the whole run and over
its second half; errors (transport failures, HTTP 5xx, INTERNAL, TEMPORARILY_UNAVAILABLE
or any unexpected code: must be 0; FULLY_BOOKED / ALREADY_DECIDED are answers, counted
apart); lost writes (must be 0): every acknowledged booking (still there, for its patient,
not cancelled), decision (the task approved), submission and the last acknowledged
allergy list of every therapist's patient is looked up in the database afterwards, and no
task may carry two approvals; overbooked slots (must be 0); the outbox after a drain; and
the CPU each tier (API processes, workers, PostgreSQL) spent per request. Baseline in the
same run: `{ __typename }` (HTTP + GraphQL, no database) from the same clients, with the
ratio of each operation's p50 to it. `--profile DIR` records the API processes with py-spy
(`pip install py-spy`) and prints where their CPU went; bench/hot_ops.py measures the API
CPU of each operation alone.

Across machines: run PostgreSQL and Redis on their own hosts, `bedside serve` and
`bedside worker` on each application host with the same BEDSIDE_DATABASE_URL,
BEDSIDE_REDIS_URL and BEDSIDE_SECRET_KEY, and point `--api` (repeatable) at them:
    .venv/bin/python bench/fleet.py --api http://10.0.0.11:8000 --api http://10.0.0.12:8000 \
        --database-url postgresql+asyncpg://bedside@10.0.0.5/bedside --users 500
(with --api the script starts nothing, prepares the data through --database-url, and
reconciles against it afterwards; CPU per tier is then not measured).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._cpu import Profiler, cpu_seconds  # noqa: E402
from bench._local import free_port, local_postgres, local_redis, wait_port  # noqa: E402

BEDSIDE = str(Path(sys.executable).with_name("bedside"))
SECRET = "fleet-secret-" + "0123456789abcdef" * 3
PASSWORD = "bedside-demo"
ANSWERS = {
    "FULLY_BOOKED",
    "ALREADY_DECIDED",
    "INSTANCE_CLOSED",
    "CONFLICT",
}  # refusals that are outcomes, not errors
APPROVERS = ["chief.wang", "ma.zhao", "vp.chen"]
SURGEONS = ["dr.li", "dr.qian"]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


@dataclass
class Ledger:
    """What the clients were told happened; reconciled with the database afterwards."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    answers: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    errors: list[str] = field(default_factory=list)
    bookings: dict[str, int] = field(default_factory=dict)  # appointment id -> patient id
    decisions: set[str] = field(default_factory=set)
    submissions: set[str] = field(default_factory=set)
    allergies: dict[int, list[str]] = field(default_factory=dict)  # patient id -> last acknowledged
    started: float = 0.0  # monotonic, when the first user arrives
    finished: list[float] = field(
        default_factory=list
    )  # when each answered request (logins aside) came back


class Api:
    def __init__(self, bases: list[str], ledger: Ledger, users: int) -> None:
        limits = httpx.Limits(max_connections=users + 20, max_keepalive_connections=users + 20)
        self.clients = [httpx.AsyncClient(base_url=b, timeout=120, limits=limits) for b in bases]
        self.ledger = ledger

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()

    async def call(
        self,
        op: str,
        token: str | None,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        record: bool = True,
    ) -> dict[str, Any] | None:
        """Returns data, or None when refused with an expected answer; errors are recorded."""
        client = random.choice(self.clients)
        headers = {"authorization": f"Bearer {token}"} if token else {}
        started = time.perf_counter()
        try:
            response = await client.post(
                "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
            )
        except httpx.HTTPError as exc:
            self.ledger.errors.append(f"{op}: {type(exc).__name__}")
            return None
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            self.ledger.errors.append(f"{op}: HTTP {response.status_code}")
            return None
        body = response.json()
        if record:
            self.ledger.latencies[op].append(elapsed)
            if op != "login" and not op.startswith("baseline"):
                self.ledger.finished.append(time.monotonic())
        for error in body.get("errors") or []:
            code = (error.get("extensions") or {}).get("code")
            if code in ANSWERS:
                self.ledger.answers[f"{op} {code}"] += 1
            else:
                self.ledger.errors.append(f"{op}: {code} {error.get('message')}")
            return None
        return body["data"]


LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }"
WORKLIST = "query($d: Date!) { myWorklist(date: $d) { id status startsAt patient { maskedName } } }"
PUSH = "mutation($in: SyncPushInput!) { syncPush(input: $in) { lastMutationId results { id status code } } }"
SLOTS = 'query($f: Date!, $t: Date!) { availableSlots(itemCode: "PHYSIO", from: $f, to: $t) { id remaining startsAt } }'
BOOK = "mutation($s: ID!, $o: ID, $k: String) { bookAppointment(slotId: $s, orderId: $o, idempotencyKey: $k) { id status } }"
TASKS = "{ myTasks { id status } }"
DECIDE = 'mutation($t: ID!, $k: String) { decideTask(taskId: $t, decision: APPROVE, comment: "同意", idempotencyKey: $k) { id status } }'
SUBMIT = """mutation($in: SurgeryApplicationInput!, $k: String) { submitSurgeryApplication(input: $in, idempotencyKey: $k) { id status } }"""


async def login(api: Api, username: str) -> str:
    for _ in range(5):
        data = await api.call("login", None, LOGIN, {"u": username, "p": PASSWORD})
        if data:
            return str(data["login"]["token"])
        await asyncio.sleep(1)
    raise RuntimeError(f"cannot sign in {username}: {api.ledger.errors[-1:]}")


@dataclass(frozen=True)
class Pace:
    """How one kind of user paces its work: a cycle is `wait` seconds of doing something
    else (treating, reading, walking), then the cycle's requests with `pause` seconds
    between them (reading a list, choosing). Both drawn uniformly from (low, high)."""

    share: float  # of the simulated users
    wait: tuple[float, float]
    pause: tuple[float, float]
    requests: int  # per cycle
    what: str

    @property
    def cycle(self) -> float:
        return sum(self.wait) / 2 + (self.requests - 1) * sum(self.pause) / 2

    def faster(self, speed: float) -> Pace:
        return Pace(
            self.share,
            (self.wait[0] / speed, self.wait[1] / speed),
            (self.pause[0] / speed, self.pause[1] / speed),
            self.requests,
            self.what,
        )

    def offered(self, users: int) -> float:
        """Requests per second that `users` of this kind send, on average."""
        return users * self.requests / self.cycle


# The people of a ward, not a load generator: a therapist records a treatment every few tens
# of seconds, a patient takes a minute or so to book a slot, an approver decides a few
# tasks a minute, a surgeon files an application every few minutes.
PACES = {
    "therapist": Pace(0.40, (20, 60), (2, 5), 2, "myWorklist, then syncPush a record"),
    "patient": Pace(0.40, (30, 90), (5, 20), 2, "availableSlots, then bookAppointment"),
    "approver": Pace(0.10, (10, 30), (2, 8), 2, "myTasks, then decideTask"),
    "surgeon": Pace(0.10, (60, 240), (0, 0), 1, "submitSurgeryApplication"),
}


def head_count(users: int) -> dict[str, int]:
    counts = {
        kind: max(1, int(users * pace.share)) for kind, pace in PACES.items() if kind != "surgeon"
    }
    counts["surgeon"] = max(1, users - sum(counts.values()))
    return counts


async def pause_for(rng: random.Random, span: tuple[float, float], deadline: float) -> bool:
    """Sleep a drawn time, cut at the deadline; False when the run is over."""
    left = deadline - time.monotonic()
    if left <= 0:
        return False
    wait = rng.uniform(*span)
    await asyncio.sleep(min(wait, left))
    return wait < left


async def therapist(
    api: Api, username: str, patient_id: int, deadline: float, rng: random.Random
) -> None:
    pace = PACES["therapist"]
    token = await login(api, username)
    group, client_id = f"fleet-{uuid.uuid4().hex}", f"pad-{uuid.uuid4().hex}"
    mutation_id = 0
    base: list[str] = []
    while await pause_for(rng, pace.wait, deadline):
        await api.call("myWorklist", token, WORKLIST, {"d": date.today().isoformat()})
        if not await pause_for(rng, pace.pause, deadline):
            return
        mutation_id += 1
        value = [f"过敏原{mutation_id}-{rng.randrange(10**6)}"]
        mutation = {
            "id": mutation_id,
            "name": "updatePatient",
            "args": {
                "patientId": patient_id,
                "base": {"allergies": base},
                "changes": {"allergies": value},
            },
        }
        data = await api.call(
            "syncPush",
            token,
            PUSH,
            {
                "in": {
                    "clientGroupId": group,
                    "clientId": client_id,
                    "schemaVersion": 2,
                    "mutations": [mutation],
                }
            },
        )
        if data:
            result = data["syncPush"]["results"][0]
            if str(result["status"]).lower() in ("applied", "merged"):
                base = value
                api.ledger.allergies[patient_id] = value
            else:
                api.ledger.errors.append(f"syncPush: {result['status']} {result.get('code')}")


def soon_tomorrow(slots: list[dict[str, Any]], deadline: float) -> list[dict[str, Any]]:
    """Slots whose day-before reminder falls due while the run lasts (with time to send it)."""
    now = datetime.now(UTC)
    first, last = (
        now + timedelta(days=1, seconds=15),
        now + timedelta(days=1, seconds=deadline - time.monotonic() - 15),
    )
    return [s for s in slots if first <= datetime.fromisoformat(s["startsAt"]) <= last]


async def patient(
    api: Api, username: str, order_id: int, patient_id: int, deadline: float, rng: random.Random
) -> None:
    pace = PACES["patient"]
    token = await login(api, username)
    while await pause_for(rng, pace.wait, deadline):
        # One patient in four wants "tomorrow, about this time": the day-before reminder
        # of that booking falls due during the run, and the workers must send it.
        tomorrow = rng.random() < 0.25
        start = (
            (datetime.now(UTC) + timedelta(days=1)).date()
            if tomorrow
            else date.today() + timedelta(days=rng.randint(1, 5))
        )
        data = await api.call(
            "availableSlots",
            token,
            SLOTS,
            {"f": start.isoformat(), "t": (start + timedelta(days=1)).isoformat()},
        )
        slots = [s for s in (data or {}).get("availableSlots", []) if s["remaining"] > 0]
        slots = (soon_tomorrow(slots, deadline) or slots) if tomorrow else slots
        if not slots or not await pause_for(rng, pace.pause, deadline):
            continue
        key = uuid.uuid4().hex
        booked = await api.call(
            "bookAppointment",
            token,
            BOOK,
            {"s": rng.choice(slots)["id"], "o": str(order_id), "k": key},
        )
        if booked:
            api.ledger.bookings[booked["bookAppointment"]["id"]] = patient_id


async def approver(api: Api, username: str, deadline: float, rng: random.Random) -> None:
    pace = PACES["approver"]
    token = await login(api, username)
    while await pause_for(rng, pace.wait, deadline):
        data = await api.call("myTasks", token, TASKS)
        pending = [t for t in (data or {}).get("myTasks", []) if t["status"] == "pending"]
        if not pending or not await pause_for(rng, pace.pause, deadline):
            continue
        task = rng.choice(pending)
        decided = await api.call(
            "decideTask", token, DECIDE, {"t": task["id"], "k": f"{username}-{task['id']}"}
        )
        if decided:
            api.ledger.decisions.add(decided["decideTask"]["id"])


async def surgeon(
    api: Api, username: str, patient_ids: list[int], deadline: float, rng: random.Random
) -> None:
    pace = PACES["surgeon"]
    token = await login(api, username)
    while await pause_for(rng, pace.wait, deadline):
        planned = datetime.now(UTC) + timedelta(days=rng.randint(2, 20), hours=rng.randint(0, 8))
        application = {
            "patientId": str(rng.choice(patient_ids)),
            "procedureCode": rng.choice(["86.04", "86.22", "47.09"]),
            "plannedAt": planned.isoformat(),
            "emergency": False,
            "diagnosis": "急性阑尾炎",
            "anesthesia": "全麻",
            "preopAssessment": "心肺功能良好",
            "consentSigned": True,
        }
        data = await api.call(
            "submitSurgeryApplication", token, SUBMIT, {"in": application, "k": uuid.uuid4().hex}
        )
        if data:
            api.ledger.submissions.add(data["submitSurgeryApplication"]["id"])


async def prepare(
    url: str, *, therapists: int, patients: int, seconds: float = 0
) -> dict[str, Any]:
    """Bulk users beside the demo hospital: therapists with a patient each, patients with
    paid physiotherapy orders, and bookable slots for the next days; among them, for the
    `seconds` of the run, "tomorrow, about now" slots in the small rooms, one starting
    every 15 s, whose day-before reminders fall due while the run lasts."""
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        password_hash = (
            await conn.execute(
                sa.text("SELECT password_hash FROM \"user\" WHERE username = 'pt.sun'")
            )
        ).scalar_one()
        rehab = (
            await conn.execute(sa.text("SELECT id FROM department WHERE code = 'REHAB'"))
        ).scalar_one()
        physio = (
            await conn.execute(sa.text("SELECT id FROM treatment_item WHERE code = 'PHYSIO'"))
        ).scalar_one()
        schedule = (
            await conn.execute(
                sa.text(
                    "INSERT INTO treatment_schedule (item_id, room, weekdays, start_time, end_time, slot_minutes, capacity, working_days_only, valid_from, is_active)"
                    " VALUES (:i, '理疗室F', '[0,1,2,3,4,5,6]', '00:00', '23:59', 15, 20, false, CURRENT_DATE, true) RETURNING id"
                ),
                {"i": physio},
            )
        ).scalar_one()
        gs_patients = list(
            (
                await conn.execute(
                    sa.text(
                        "SELECT p.id FROM patient p JOIN department d ON d.id = p.department_id WHERE d.code = 'GS'"
                    )
                )
            ).scalars()
        )
        await conn.execute(
            sa.text(
                'INSERT INTO "user" (username, display_name, department_id, roles, is_active, token_version, failed_logins, created_at, password_hash)'
                " SELECT 'pt.fleet' || g, '治疗师' || g, :d, '[\"therapist\"]', true, 0, 0, now(), :h FROM generate_series(1, :n) g"
            ),
            {"n": therapists, "d": rehab, "h": password_hash},
        )
        await conn.execute(
            sa.text(
                "INSERT INTO patient (mrn, name, gender, department_id, allergies, created_at, updated_at)"
                " SELECT 'FT' || g, '康复患者' || g, 'U', :d, '[]', now(), now() FROM generate_series(1, :n) g"
            ),
            {"n": therapists, "d": rehab},
        )
        await conn.execute(
            sa.text(
                'INSERT INTO "user" (username, display_name, roles, is_active, token_version, failed_logins, created_at, password_hash)'
                " SELECT 'patient.fleet' || g, '患者' || g, '[\"patient\"]', true, 0, 0, now(), :h FROM generate_series(1, :n) g"
            ),
            {"n": patients, "h": password_hash},
        )
        await conn.execute(
            sa.text(
                "INSERT INTO patient (mrn, name, gender, department_id, user_id, allergies, created_at, updated_at)"
                " SELECT 'FP' || g, '门诊患者' || g, 'U', :d, (SELECT id FROM \"user\" WHERE username = 'patient.fleet' || g), '[]', now(), now()"
                " FROM generate_series(1, :n) g"
            ),
            {"n": patients, "d": rehab},
        )
        await conn.execute(
            sa.text(
                "INSERT INTO treatment_order (patient_id, item_id, sessions, used_sessions, payment_status, source, created_at, updated_at)"
                " SELECT id, :i, 1000, 0, 'paid', 'his', now(), now() FROM patient WHERE mrn LIKE 'FP%'"
            ),
            {"i": physio},
        )
        start = datetime.combine(date.today() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
        await conn.execute(
            sa.text(
                "INSERT INTO treatment_slot (schedule_id, item_id, room, starts_at, ends_at, capacity, remaining)"
                " SELECT :s, :i, '理疗室F', CAST(:start AS timestamptz) + (g * interval '15 minutes'),"
                " CAST(:start AS timestamptz) + ((g + 1) * interval '15 minutes'), 20, 20 FROM generate_series(0, 6 * 96 - 1) g"
            ),
            {"s": schedule, "i": physio, "start": start},
        )
        soon = datetime.now(UTC) + timedelta(days=1, seconds=45)
        await conn.execute(
            sa.text(
                "INSERT INTO treatment_slot (schedule_id, item_id, room, starts_at, ends_at, capacity, remaining)"
                " SELECT :s, :i, '理疗小间' || g, CAST(:soon AS timestamptz) + (g * interval '15 seconds'),"
                " CAST(:soon AS timestamptz) + (g * interval '15 seconds') + interval '15 minutes', 4, 4 FROM generate_series(0, :n) g"
            ),
            {"s": schedule, "i": physio, "soon": soon, "n": int(seconds // 15) + 8},
        )
        # Each therapist's day: 8 outpatients this morning (09:00-12:30 hospital time), so
        # myWorklist answers with a real list.
        therapist_ids = list(
            (
                await conn.execute(
                    sa.text("SELECT id FROM \"user\" WHERE username LIKE 'pt.fleet%' ORDER BY id")
                )
            ).scalars()
        )
        outpatients = list(
            (
                await conn.execute(
                    sa.text("SELECT id FROM patient WHERE mrn LIKE 'FP%' ORDER BY id")
                )
            ).scalars()
        )
        morning = datetime.combine(date.today(), datetime.min.time(), tzinfo=UTC) + timedelta(
            hours=1
        )
        await conn.execute(
            sa.text(
                "INSERT INTO appointment (patient_id, item_id, therapist_id, room, starts_at, ends_at, status, channel, walk_in, receipt_no, receipt, version, created_at, updated_at)"
                " VALUES (:p, :i, :t, '理疗室F', :s, :e, 'booked', 'admin', false, '', '{}', 1, now(), now())"
            ),
            [
                {
                    "p": outpatients[(n * 8 + k) % len(outpatients)],
                    "i": physio,
                    "t": t,
                    "s": morning + timedelta(minutes=30 * k),
                    "e": morning + timedelta(minutes=30 * k + 30),
                }
                for n, t in enumerate(therapist_ids)
                for k in range(8)
            ],
        )
        therapist_patients = dict(
            (
                await conn.execute(
                    sa.text(
                        "SELECT 'pt.fleet' || substr(mrn, 3), id FROM patient WHERE mrn LIKE 'FT%'"
                    )
                )
            ).all()
        )
        patient_orders = [
            tuple(row)
            for row in (
                await conn.execute(
                    sa.text(
                        "SELECT u.username, o.id, p.id FROM treatment_order o JOIN patient p ON p.id = o.patient_id JOIN \"user\" u ON u.id = p.user_id WHERE p.mrn LIKE 'FP%'"
                    )
                )
            ).all()
        ]
        await conn.execute(sa.text("ANALYZE"))
    await engine.dispose()
    return {
        "therapists": therapist_patients,
        "patients": patient_orders,
        "surgery_patients": gs_patients,
    }


async def reconcile(url: str, ledger: Ledger) -> dict[str, int]:
    engine = create_async_engine(url)
    lost: dict[str, int] = {}
    async with engine.connect() as conn:
        ids = [int(i) for i in ledger.bookings]
        # Nobody cancels in the run and the slots lie in the coming days (no no-shows): an
        # acknowledged booking must still be there, for its patient, not cancelled.
        rows = (
            dict(
                (
                    await conn.execute(
                        sa.text(
                            "SELECT id, patient_id FROM appointment WHERE id = ANY(:ids) AND status <> 'cancelled' AND deleted_at IS NULL"
                        ),
                        {"ids": ids},
                    )
                ).all()
            )
            if ids
            else {}
        )
        lost["bookings"] = sum(1 for a, p in ledger.bookings.items() if rows.get(int(a)) != p)
        ids = [int(i) for i in ledger.decisions]
        decided = (
            set(
                (
                    await conn.execute(
                        sa.text(
                            "SELECT id FROM approval_task WHERE id = ANY(:ids) AND status = 'approved' AND decided_at IS NOT NULL"
                        ),
                        {"ids": ids},
                    )
                ).scalars()
            )
            if ids
            else set()
        )
        lost["decisions"] = len(set(ids) - decided)
        # Several devices of one approver tap the same task: one decision, however many taps.
        lost["decided twice"] = (
            await conn.execute(
                sa.text(
                    "SELECT count(*) FROM (SELECT stream, data->>'task_id' FROM audit_event WHERE action = 'approved'"
                    " GROUP BY stream, data->>'task_id' HAVING count(*) > 1) twice"
                )
            )
        ).scalar_one()
        ids = [int(i) for i in ledger.submissions]
        found = (
            set(
                (
                    await conn.execute(
                        sa.text("SELECT id FROM approval_instance WHERE id = ANY(:ids)"),
                        {"ids": ids},
                    )
                ).scalars()
            )
            if ids
            else set()
        )
        lost["submissions"] = len(set(ids) - found)
        ids = list(ledger.allergies)
        current = (
            dict(
                (
                    await conn.execute(
                        sa.text("SELECT id, allergies FROM patient WHERE id = ANY(:ids)"),
                        {"ids": ids},
                    )
                ).all()
            )
            if ids
            else {}
        )
        lost["records"] = sum(1 for p, value in ledger.allergies.items() if current.get(p) != value)
        lost["overbooked slots"] = (
            await conn.execute(
                sa.text(
                    "SELECT count(*) FROM treatment_slot s WHERE s.remaining < 0 OR s.capacity < (SELECT count(*) FROM appointment a WHERE a.slot_id = s.id AND a.status NOT IN ('cancelled'))"
                )
            )
        ).scalar_one()
    await engine.dispose()
    return lost


async def outbox_state(url: str) -> dict[str, int]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.text(
                    "SELECT count(*), count(delivered_at), count(*) FILTER (WHERE delivered_at IS NULL AND cancelled_at IS NULL AND due_at <= now()),"
                    " coalesce(sum(reminders_sent), 0),"
                    # A sent notice's due_at is cleared (or moved to its next reminder): the payload
                    # keeps when a day-before reminder was due.
                    " count(*) FILTER (WHERE kind = 'appointment.reminder' AND cancelled_at IS NULL AND CAST(payload->>'deliver_after' AS timestamptz) <= now()),"
                    " count(*) FILTER (WHERE kind = 'appointment.reminder' AND cancelled_at IS NULL AND CAST(payload->>'deliver_after' AS timestamptz) <= now()"
                    " AND delivered_at IS NOT NULL)"
                    " FROM notice"
                )
            )
        ).one()
        by_status = dict(
            (
                await conn.execute(
                    sa.text("SELECT status, count(*) FROM notice_dispatch GROUP BY status")
                )
            ).all()
        )
    await engine.dispose()
    return {
        "notices": row[0],
        "delivered": row[1],
        "pending": row[2],
        "day-before reminders due": row[4],
        "of them sent": row[5],
        "unread re-sent": row[3],
        **{f"dispatch {k}": v for k, v in by_status.items()},
    }


async def later(delay: float, user: Any) -> None:
    await asyncio.sleep(delay)
    await user


async def drive(
    bases: list[str], url: str, users: int, seconds: float, ramp: float, seed: int
) -> tuple[Ledger, float, dict[str, int]]:
    counts = head_count(users)
    data = await prepare(
        url, therapists=counts["therapist"], patients=counts["patient"], seconds=seconds
    )
    ledger = Ledger()
    api = Api(bases, ledger, users)
    rng = random.Random(seed)
    try:
        # Baseline: the cheapest GraphQL answer, from the same clients, before the load.
        for _ in range(200):
            await api.call("baseline {__typename}", None, "{ __typename }")
        started = ledger.started = time.monotonic()
        deadline = started + seconds
        people = []
        for username, patient_id in list(data["therapists"].items())[: counts["therapist"]]:
            people.append(
                therapist(api, username, patient_id, deadline, random.Random(rng.random()))
            )
        for username, order_id, patient_id in data["patients"][: counts["patient"]]:
            people.append(
                patient(api, username, order_id, patient_id, deadline, random.Random(rng.random()))
            )
        for i in range(counts["approver"]):
            people.append(
                approver(api, APPROVERS[i % len(APPROVERS)], deadline, random.Random(rng.random()))
            )
        for i in range(counts["surgeon"]):
            people.append(
                surgeon(
                    api,
                    SURGEONS[i % len(SURGEONS)],
                    data["surgery_patients"],
                    deadline,
                    random.Random(rng.random()),
                )
            )
        # Ramp-up: people arrive one after another over the first `ramp` seconds (kinds
        # mixed), each signing in on arrival, as a shift starts; not all at one instant.
        rng.shuffle(people)
        await asyncio.gather(
            *(later(ramp * i / len(people), user) for i, user in enumerate(people))
        )
        elapsed = time.monotonic() - started
    finally:
        await api.close()
    # Let the workers drain the outbox (bounded), then reconcile.
    outbox: dict[str, int] = {}
    for _ in range(60):
        outbox = await outbox_state(url)
        if (
            not outbox["pending"]
            and not outbox.get("dispatch sending")
            and not outbox.get("dispatch retry")
        ):
            break
        await asyncio.sleep(1)
    return ledger, elapsed, outbox


def describe_load(users: int, ramp: float) -> float:
    """Print who does what how often, and return the offered load in requests/s."""
    counts = head_count(users)
    print(
        f"{'users':<10}{'count':>6}  {'waits s':>11}  {'pauses s':>11}  {'cycle s':>8}  {'offers req/s':>12}  cycle"
    )
    for kind, pace in PACES.items():
        print(
            f"{kind:<10}{counts[kind]:>6}  {pace.wait[0]:>5.4g}-{pace.wait[1]:<5.4g}  {pace.pause[0]:>5.4g}-{pace.pause[1]:<5.4g}"
            f"  {pace.cycle:>8.1f}  {pace.offered(counts[kind]):>12.1f}  {pace.what}"
        )
    offered = sum(pace.offered(counts[kind]) for kind, pace in PACES.items())
    print(
        f"offered load once everyone is in: up to {offered:.1f} requests/s (an approver with nothing pending sends one per cycle;"
        f" + one login each; arrivals spread over {ramp:.0f} s)"
    )
    return offered


def report(
    ledger: Ledger,
    elapsed: float,
    lost: dict[str, int],
    outbox: dict[str, int],
    users: int,
    ramp: float,
    processes: str,
) -> int:
    baseline = percentile(ledger.latencies.pop("baseline {__typename}", []), 50)
    total = sum(len(v) for k, v in ledger.latencies.items() if k != "login")
    print(f"\nfleet: {processes}; {users} simulated users for {elapsed:.0f} s")
    offered = describe_load(users, ramp)
    print(
        f"{'operation':<26}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'p50/baseline':>14}"
    )
    for op in sorted(ledger.latencies):
        values = ledger.latencies[op]
        p50 = percentile(values, 50)
        print(
            f"{op:<26}{len(values):>7}{p50 * 1000:>9.1f}{percentile(values, 95) * 1000:>9.1f}{percentile(values, 99) * 1000:>9.1f}{(p50 / baseline if baseline else 0):>14.1f}"
        )
    print(f"baseline {{ __typename }} p50: {baseline * 1000:.1f} ms")
    half = ledger.started + elapsed / 2
    steady = sum(1 for t in ledger.finished if t >= half) / (elapsed / 2)
    print(
        f"throughput: {total / elapsed:.1f} requests/s over the whole run (ramp-up and first waits included), "
        f"{steady:.1f} requests/s over its second half; logins excluded; offered at full strength {offered:.1f}"
    )
    print(f"answers (expected refusals): {dict(ledger.answers) or 0}")
    print(
        f"acknowledged: bookings {len(ledger.bookings)}, decisions {len(ledger.decisions)}, submissions {len(ledger.submissions)}, records {len(ledger.allergies)} patients"
    )
    print(
        f"errors: {len(ledger.errors)}" + (f"  first: {ledger.errors[:5]}" if ledger.errors else "")
    )
    print(f"lost writes: {sum(lost.values())}  {lost}")
    print(f"outbox after drain: {outbox}")
    unsent = max(outbox["pending"], outbox["day-before reminders due"] - outbox["of them sent"])
    print(f"due notices unsent after the drain: {unsent}")
    return 0 if not ledger.errors and not sum(lost.values()) and not unsent else 1


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)


async def amain() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--apis", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--ramp", type=float, default=30, help="seconds over which the users arrive"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--speed",
        type=float,
        default=1,
        help="divide every wait and pause by this (stress beyond the ward's pace)",
    )
    parser.add_argument(
        "--api", action="append", help="an API already running (fleet across machines); repeatable"
    )
    parser.add_argument(
        "--database-url", help="with --api: the fleet's database, for preparing and reconciling"
    )
    parser.add_argument("--logs", type=Path, default=Path("/tmp/bedside-fleet-logs"))
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy record the API processes into this folder and print where their CPU goes",
    )
    args = parser.parse_args()
    if args.speed != 1:
        # A stress test, not a ward: every wait and pause divided by --speed.
        PACES.update({kind: pace.faster(args.speed) for kind, pace in PACES.items()})

    if args.api:
        if not args.database_url:
            parser.error("--api needs --database-url")
        ledger, elapsed, outbox = await drive(
            args.api, args.database_url, args.users, args.seconds, args.ramp, args.seed
        )
        lost = await reconcile(args.database_url, ledger)
        return report(
            ledger,
            elapsed,
            lost,
            outbox,
            args.users,
            args.ramp,
            f"{len(args.api)} remote API processes",
        )

    args.logs.mkdir(parents=True, exist_ok=True)
    profiler = None
    with ExitStack() as stack:
        pg = stack.enter_context(local_postgres())
        redis = stack.enter_context(local_redis())
        url = pg.url_for("postgres")
        env = {
            **os.environ,
            "BEDSIDE_DATABASE_URL": url,
            "BEDSIDE_REDIS_URL": redis.url,
            "BEDSIDE_SECRET_KEY": SECRET,
            "BEDSIDE_DATA_DIR": str(args.logs / "data"),
            "BEDSIDE_LOG_LEVEL": "WARNING",
            # The fleet measures the service, not argon2 at 64 MiB x 3 (a login per user).
            "BEDSIDE_ARGON2_TIME_COST": "1",
            "BEDSIDE_ARGON2_MEMORY_COST_KIB": "8192",
            "BEDSIDE_ARGON2_PARALLELISM": "1",
            "BEDSIDE_LOGIN_MAX_FAILURES_PER_ADDRESS": "100000",
        }
        for command in (["migrate"], ["seed-demo"]):
            await asyncio.to_thread(
                subprocess.run, [BEDSIDE, *command], env=env, check=True, capture_output=True
            )
        processes: list[subprocess.Popen[bytes]] = []
        stack.callback(
            lambda: [p.terminate() for p in processes] and [p.wait(15) for p in processes]
        )
        ports = [free_port() for _ in range(args.apis)]
        for i, port in enumerate(ports):
            processes.append(
                spawn(
                    [BEDSIDE, "serve", "--host", "127.0.0.1", "--port", str(port)],
                    env,
                    args.logs / f"api{i}.log",
                )
            )
        for i in range(args.workers):
            processes.append(spawn([BEDSIDE, "worker"], env, args.logs / f"worker{i}.log"))
        for port in ports:
            wait_port(port, 60)
        profiler = Profiler(args.profile) if args.profile else None
        for i, process in enumerate(processes[: args.apis]):
            if profiler:
                profiler.attach(process.pid, f"api{i}")
        tiers = {
            "API processes": [p.pid for p in processes[: args.apis]],
            "workers": [p.pid for p in processes[args.apis :]],
        }
        postmaster = int((pg.directory / "data" / "postmaster.pid").read_text().split()[0])

        def cpu() -> dict[str, float]:
            used = {tier: sum(cpu_seconds(pid) for pid in pids) for tier, pids in tiers.items()}
            return {**used, "PostgreSQL": cpu_seconds(postmaster, children=True)}

        before = cpu()
        ledger, elapsed, outbox = await drive(
            [f"http://127.0.0.1:{p}" for p in ports],
            url,
            args.users,
            args.seconds,
            args.ramp,
            args.seed,
        )
        after = cpu()
        lost = await reconcile(url, ledger)
        crashed = [p.args[1] for p in processes if p.poll() is not None]
        if crashed:
            print(f"processes that exited during the run: {crashed} (logs in {args.logs})")
        # Preparation and the drain are inside the window too (small beside the load).
        requests = sum(len(v) for v in ledger.latencies.values())
        status = report(
            ledger,
            elapsed,
            lost,
            outbox,
            args.users,
            args.ramp,
            f"private PostgreSQL + Redis, {args.apis} API processes, {args.workers} workers",
        )
        print(
            "CPU per request (logins and the baseline included): "
            + ", ".join(
                f"{tier} {(after[tier] - before[tier]) / max(1, requests) * 1000:.1f} ms"
                for tier in after
            )
            + f"  ({requests} requests; machine: {os.cpu_count()} cores)"
        )
    if profiler:
        profiler.wait()
        print(profiler.top())
    return status


if __name__ == "__main__":
    sys.exit(asyncio.run(amain()))
