"""An approver with DingTalk gets the task's interactive card, not a work notice saying
the same thing at the same moment; the policy's reminders still reach them as text."""

from __future__ import annotations

from datetime import timedelta

from api.domain import approvals
from api.domain.people import user_by_username
from api.models.notifications import NotificationPreference
from api.services import Services
from notifications import outbox
from notifications.delivery.setup import build_dispatcher
from tests.approvals.helpers import REVIEW_V1, start
from tests.notifications.conftest import local
from tests.notifications.harness import ArqHarness
from tests.simulators.platforms import PlatformSimulator, simulated_services


def _work_notices(sim: PlatformSimulator, username: str) -> list[str]:
    return [
        str(m["body"])
        for m in sim.messages_to("dingtalk", username)
        if m["kind"].startswith("work_notice")
    ]


async def test_the_task_card_is_the_first_message_and_reminders_follow_as_text(
    notify_services: Services, platform_sim: PlatformSimulator
) -> None:
    services = simulated_services(notify_services, platform_sim)
    async with services.db.transaction() as session:
        chief = await user_by_username(session, "chief.wang")
        session.add(NotificationPreference(user_id=chief.id, channels=["dingtalk"], digest=False))
        await approvals.publish_definition(session, REVIEW_V1)
        instance = await start(session, {"grade": 1})
        await outbox.enqueue(
            session,
            recipient_id=chief.id,
            kind="info",
            title="科室例会通知",
            idempotency_key="meeting:1",
        )
    t0 = local(2026, 12, 7, 9, 0)  # a Monday
    async with ArqHarness(services, build_dispatcher(services)) as h:
        first = await h.sweep(t0)
        assert (first["first_deliveries"], first["first_by_card"], first["sent"]) == (2, 1, 1)
        sent = _work_notices(platform_sim, "chief.wang")
        assert len(sent) == 1 and "科室例会通知" in sent[0]  # other notices still go there
        # Four working hours later the task still waits: the first reminder goes as text.
        later = await h.sweep(t0 + timedelta(hours=5, minutes=31))
        assert (later["reminders"], later["sent"]) == (1, 1)
    sent = _work_notices(platform_sim, "chief.wang")
    assert len(sent) == 2 and f"#{instance.id}" in sent[1]
