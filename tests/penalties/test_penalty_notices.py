"""Issuing a penalty tells the doctor and the chief point to point, repeating until each
reads it; with Redis down the API still accepts the command and the outbox drains later."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import sqlalchemy as sa

from api.app import create_app
from api.domain.people import user_by_username
from api.models.notices import Notice
from api.models.notifications import NotificationPreference
from api.services import Services
from notifications.delivery.setup import build_dispatcher
from tests.conftest import GraphQLClient
from tests.notifications.conftest import local
from tests.notifications.harness import ArqHarness, Sink

RECORD = """mutation($i: PenaltyScoreInput!) { recordPenaltyScore(input: $i) { id } }"""
CONFIRM = "mutation($id: ID!) { confirmPenaltyScore(id: $id) { id } }"
PENALTIES = "query { penalties { id kind } }"
ISSUE = "mutation($id: ID!) { issuePenalty(id: $id) { id status } }"
RECEIPTS = """query($id: ID!) { noticeReceipts(subjectType: "penalty", subjectId: $id) {
  kind recipient { username } readAt readVia remindersSent escalatedAt reads { source } deliveries { channel reminderNo status } } }"""


async def _prefer_webhook(services: Services, *usernames: str) -> dict[str, int]:
    ids = {}
    async with services.db.transaction() as session:
        for name in usernames:
            user = await user_by_username(session, name)
            session.add(NotificationPreference(user_id=user.id, channels=["webhook"], digest=False))
            ids[name] = user.id
    return ids


async def test_redis_down_then_back_and_reminders_until_each_reads(
    notify_services: Services, sink: Sink
) -> None:
    ids = await _prefer_webhook(notify_services, "dr.li", "chief.wang", "ma.zhao")
    # The API process believes Redis is at a port where nothing answers.
    down = notify_services.settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    api_services = Services(
        settings=down,
        db=notify_services.db,
        hashing=notify_services.hashing,
        cipher=notify_services.cipher,
    )
    app = create_app(down, services=api_services)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            ma = await GraphQLClient(http).as_user("ma.zhao")
            score = (
                await ma.data(
                    RECORD,
                    {
                        "i": {
                            "doctorUsername": "dr.li",
                            "itemCode": "SS-01",
                            "occurredAt": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
                        }
                    },
                )
            )["recordPenaltyScore"]
            await ma.data(CONFIRM, {"id": score["id"]})
            penalty = next(
                p for p in (await ma.data(PENALTIES))["penalties"] if p["kind"] == "one_off"
            )
            assert (await ma.data(ISSUE, {"id": penalty["id"]}))["issuePenalty"][
                "status"
            ] == "issued"
            await asyncio.sleep(0)  # let the failing kick run; it must not break anything
            chief = await GraphQLClient(http).as_user("chief.wang")
            chief_notice = (
                await chief.data("query { myNotices { id kind deliveries { channel } } }")
            )["myNotices"][0]
            assert (
                chief_notice["kind"] == "penalty.issued" and chief_notice["deliveries"] == []
            )  # written, not yet delivered
    assert sink.requests == []

    # Redis is back: a worker's sweep drains the outbox, then the reminders run.
    async with ArqHarness(notify_services, build_dispatcher(notify_services)) as h:
        await h.sweep(local(2026, 12, 7, 9, 0))
        assert len(sink.to(ids["chief.wang"])) == 1
        assert [m["title"] for m in sink.to(ids["dr.li"])] == [
            "不良执业记分通知 / bad-practice score: 越级开展手术 / surgery beyond authorised grade",
            "奖惩通知书 / penalty notice",
        ]
        for t in (local(2026, 12, 7, 11, 0), local(2026, 12, 7, 14, 30)):
            await h.sweep(t)
        assert len(sink.to(ids["chief.wang"])) == 3  # first delivery + 2 reminders
        # The chief opens the link of the second reminder (a read through any channel).
        link = sink.to(ids["chief.wang"])[-1]["url"]
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(
                app=create_app(notify_services.settings, services=notify_services)
            ),
            base_url="http://testserver",
        ) as http:
            opened = await http.get(link.split("127.0.0.1:8000", 1)[1])
            assert opened.status_code == 303
            for t in (
                local(2026, 12, 7, 16, 30),
                local(2026, 12, 8, 9, 0),
                local(2026, 12, 8, 11, 0),
            ):
                await h.sweep(t)
            # No third reminder for the chief; what reached them since are the escalations
            # about dr.li, who read neither the score notice nor the penalty notice.
            later = sink.to(ids["chief.wang"])[3:]
            assert len(later) == 2 and all(
                "升级" in m["title"] and "李医生" in m["title"] for m in later
            )
            ma = await GraphQLClient(http).as_user("ma.zhao")
            receipts = {
                r["recipient"]["username"]: r
                for r in (await ma.data(RECEIPTS, {"id": penalty["id"]}))["noticeReceipts"]
                if r["kind"] == "penalty.issued"
            }
    chief_receipt = receipts["chief.wang"]
    assert (
        chief_receipt["readVia"] == "link"
        and chief_receipt["remindersSent"] == 2
        and chief_receipt["escalatedAt"] is None
    )
    doctor = receipts["dr.li"]
    assert doctor["readAt"] is None and doctor["remindersSent"] == 3 and doctor["escalatedAt"]
    assert [d["reminderNo"] for d in doctor["deliveries"] if d["channel"] == "webhook"] == [
        0,
        1,
        2,
        3,
    ]
    async with notify_services.db.session() as session:
        pending = (
            await session.execute(
                sa.select(sa.func.count()).select_from(Notice).where(Notice.due_at.is_not(None))
            )
        ).scalar_one()
    assert pending == 0  # read, or reminded the policy's number of times and escalated


NOTICES = "{ myNotices { kind titleText { zh en } bodyText { zh en } } }"


async def test_the_penalty_notice_states_the_whole_decision(
    gql: GraphQLClient, demo: Services
) -> None:
    """Points, the scores counted, the period, the measure and how to appeal, in each
    language whole; the score's own notice tells how to appeal it."""
    ma = await gql.as_user("ma.zhao")
    occurred = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    score = (
        await ma.data(
            RECORD,
            {"i": {"doctorUsername": "dr.li", "itemCode": "SS-01", "occurredAt": occurred}},
        )
    )["recordPenaltyScore"]
    await ma.data(CONFIRM, {"id": score["id"]})
    one_off = next(p for p in (await ma.data(PENALTIES))["penalties"] if p["kind"] == "one_off")
    await ma.data(ISSUE, {"id": one_off["id"]})

    for username in ("dr.li", "chief.wang"):
        notices = (await (await gql.as_user(username)).data(NOTICES))["myNotices"]
        issued = [n for n in notices if n["kind"] == "penalty.issued"]
        assert len(issued) == 1, username
        zh, en = issued[0]["bodyText"]["zh"], issued[0]["bodyText"]["en"]
        for expected in (
            "李医生：单次记分≥6分",
            "累计记分：6 分",
            "越级开展手术 6 分",
            "统计期：单次记分",
            "处理决定：暂停手术权限30天",
            "如何申诉",
        ):
            assert expected in zh, expected
        assert "surgical privileges suspended for 30 days" in en and "To appeal" in en
        assert "/" not in zh.replace("≥", "") and "privileges" not in zh
    scored = next(
        n
        for n in (await (await gql.as_user("dr.li")).data(NOTICES))["myNotices"]
        if n["kind"] == "penalty.score"
    )
    assert scored["titleText"]["zh"] == "不良执业记分通知：越级开展手术"
    assert "申诉" in scored["bodyText"]["zh"] and "Appeal" in scored["bodyText"]["en"]
