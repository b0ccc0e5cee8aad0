"""危急值: an ORU^R01 with a critical flag tells the attending doctor and the department
head, through the `critical_value` reminder policy, again and again until each reads it.

The result is built from the v2.5 ORU_R01 definition (tests/hl7/standard.py: OBX-8
Abnormal Flags, table 0078 `HH` "Above upper panic limits"), sent over TCP; the sweeps of
the notification worker run at injected times through a real arq worker.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from api.domain.people import user_by_username
from api.models.notices import Notice
from api.models.notifications import NotificationPreference
from api.services import Services
from integrations.hl7.mllp import MLLPClient
from notifications.delivery.setup import build_dispatcher
from tests.conftest import GraphQLClient
from tests.hl7.standard import Observation, Person, encode, oru, read_ack
from tests.notifications.conftest import (  # noqa: F401  (fixtures)
    local,
    no_wakers_from_other_tests,
    notify_services,
    redis_url,
    sink,
)
from tests.notifications.harness import ArqHarness, Sink

POTASSIUM = Observation("K", "血钾", "6.8", "mmol/L", "3.5-5.3", "HH")
SODIUM = Observation("NA", "血钠", "139", "mmol/L", "137-147", "N")
MY_NOTICES = "{ myNotices { id kind readAt } }"
MARK_READ = "mutation($id: ID!) { markNoticeRead(id: $id) { id readAt } }"


async def critical_notices(services: Services) -> list[Notice]:
    async with services.db.session() as session:
        return list(
            (
                await session.execute(
                    sa.select(Notice).where(Notice.kind == "lab.critical").order_by(Notice.id)
                )
            ).scalars()
        )


async def test_a_critical_value_repeats_until_each_reads_it(
    his: MLLPClient, notify_services: Services, sink: Sink, http
) -> None:  # type: ignore[no-untyped-def]
    async with notify_services.db.transaction() as session:
        doctor = await user_by_username(session, "dr.li")  # D1001 in the mapping
        head = await user_by_username(session, "chief.he")  # head of P0001's REHAB
        for user in (doctor, head):
            session.add(NotificationPreference(user_id=user.id, channels=["webhook"], digest=True))
    doctor_id, head_id = doctor.id, head.id

    # A normal sodium beside the critical potassium: only the potassium is told.
    reply = read_ack(await his.send(encode(oru("ORU-1", "LIS-REQ-1", [SODIUM, POTASSIUM]))))
    assert reply.code == "AA", reply
    notices = await critical_notices(notify_services)
    assert sorted(n.recipient_id for n in notices) == sorted([doctor_id, head_id])
    assert all(n.critical and n.policy_key == "critical_value" for n in notices)
    assert "血钾" in notices[0].title and "6.8" in notices[0].title
    # The LIS resends the result (new control id, same request and test): nothing new.
    assert read_ack(await his.send(encode(oru("ORU-2", "LIS-REQ-1", [POTASSIUM])))).code == "AA"
    assert len(await critical_notices(notify_services)) == 2

    dispatcher = build_dispatcher(notify_services)
    night = local(2026, 12, 7, 21, 0)  # a Monday night: no working hours, no waiting
    async with ArqHarness(notify_services, dispatcher) as h:
        await h.sweep(night)
        assert (len(sink.to(doctor_id)), len(sink.to(head_id))) == (1, 1)
        await h.sweep(night + timedelta(minutes=5))
        assert (len(sink.to(doctor_id)), len(sink.to(head_id))) == (1, 1)
        await h.sweep(night + timedelta(minutes=10))  # the policy's ten minutes
        assert (len(sink.to(doctor_id)), len(sink.to(head_id))) == (2, 2)

        client = await GraphQLClient(http).as_user("dr.li")
        mine = [
            n for n in (await client.data(MY_NOTICES))["myNotices"] if n["kind"] == "lab.critical"
        ]
        assert len(mine) == 1 and mine[0]["readAt"] is None
        assert (await client.data(MARK_READ, {"id": mine[0]["id"]}))["markNoticeRead"]["readAt"]

        await h.sweep(night + timedelta(minutes=20))
        # The doctor read it: no more for them; the head has not: reminded again.
        assert (len(sink.to(doctor_id)), len(sink.to(head_id))) == (2, 3)


async def test_results_that_are_not_critical_or_not_ours(
    his: MLLPClient, notify_services: Services
) -> None:
    reply = read_ack(await his.send(encode(oru("ORU-3", "LIS-REQ-2", [SODIUM]))))
    assert reply.code == "AA"
    assert await critical_notices(notify_services) == []
    # A critical value for a patient the archive does not know: refused, so the LIS
    # falls back to the telephone instead of believing it delivered.
    stranger = Person(mrn="H900001", family="吴", given="用")
    reply = read_ack(await his.send(encode(oru("ORU-4", "LIS-REQ-3", [POTASSIUM], stranger))))
    assert reply.code == "AE" and reply.err_code == "204"
    assert await critical_notices(notify_services) == []
