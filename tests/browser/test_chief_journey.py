"""The penalty's people, on the phone: the doctor sees the unread count on the home tile,
the penalty notice marked important with the whole decision (points, period, measure, how
to appeal) and appeals a score in the app; the department chief gets the same notice and
reads a ranking that says what its numbers mean and over which period; medical affairs'
dashboard leads with the headline figures for a chosen period, and says when a period has
no data instead of drawing empty charts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.browser.conftest import PHONE, screenshot, sign_in
from tests.browser.scenes import SHANGHAI, graphql, submit_grade4_application, token_for
from tests.browser.test_patient_journey import unfolded

pytestmark = pytest.mark.browser

RECORD = """mutation($i: PenaltyScoreInput!) { recordPenaltyScore(input: $i) { id } }"""


async def score(base: str, token: str, item: str, note: str, days_ago: int = 1) -> str:
    occurred = (dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago)).isoformat()
    data = await graphql(
        base,
        RECORD,
        {
            "i": {
                "doctorUsername": "dr.li",
                "itemCode": item,
                "occurredAt": occurred,
                "description": note,
                "recorderUnit": "医务处",
            }
        },
        token,
    )
    return str(data["recordPenaltyScore"]["id"])


async def penalty_scene(base: str) -> str:
    """Medical affairs score dr.li 6 points (越级开展手术), confirm it, and issue the
    penalty it brings (暂停手术权限30天); a second score of 1 point stays open to appeal.
    Returns that open score's id."""
    ma = await token_for(base, "ma.zhao")
    grave = await score(base, ma, "SS-01", "越级开展四级手术")
    await graphql(
        base, "mutation($id: ID!) { confirmPenaltyScore(id: $id) { id } }", {"id": grave}, ma
    )
    pending = (await graphql(base, '{ penalties(status: "pending") { id } }', token=ma))[
        "penalties"
    ]
    assert len(pending) == 1
    await graphql(
        base, "mutation($id: ID!) { issuePenalty(id: $id) { id } }", {"id": pending[0]["id"]}, ma
    )
    return await score(base, ma, "HX-02", "病程记录未按时完成")


async def open_penalty_notice(page: Any) -> str:
    """Unfold the 奖惩通知书 and check it states the whole decision; returns its id."""
    notice = page.locator("[data-testid^=notice-]").filter(has_text="奖惩通知书").first
    await notice.wait_for()
    notice_id = (await notice.get_attribute("data-testid")).removeprefix("notice-")
    await notice.click()
    await unfolded(page, f"[data-testid=notice-body-{notice_id}]")
    await page.wait_for_selector(".van-toast", state="hidden")
    assert await page.locator(f"[data-testid=important-{notice_id}]").is_visible()
    body = await page.inner_text(f"[data-testid=notice-body-{notice_id}]")
    year = dt.datetime.now(SHANGHAI).year
    for expected in (
        "单次记分≥6分",  # the rule
        "越级开展手术 6 分",  # the score it counted
        "累计记分：6 分",
        "统计期：单次记分",
        "处理决定：暂停手术权限30天",
        "如何申诉",
        "医务处",
    ):
        assert expected in body, expected
    assert " / " not in body and "surgical privileges" not in body and str(year + 1) not in body
    return notice_id


async def test_doctor_reads_the_penalty_and_appeals_a_score(
    hospital, live_server, new_context
) -> None:
    open_score = await penalty_scene(live_server)
    page = await (await new_context(viewport=PHONE)).new_page()
    await sign_in(page, "dr.li")
    badge = page.locator("[data-testid=tile-notices-badge]")
    await badge.wait_for()
    token = await token_for(live_server, "dr.li")
    notices = (await graphql(live_server, "{ myNotices { id kind readAt } }", token=token))[
        "myNotices"
    ]
    unread = sum(1 for n in notices if not n["readAt"])
    assert unread >= 3 and (await badge.inner_text()).strip() == str(unread)
    await page.wait_for_selector(".van-toast", state="hidden")
    await screenshot(page, "phone-doctor-home-unread")

    await page.click("[data-testid=tile-notices]")
    await open_penalty_notice(page)
    await screenshot(page, "phone-doctor-penalty-notice")

    # The open score: 申诉 in the app.
    score_notice = (
        page.locator("[data-testid^=notice-]")
        .filter(has_text="不良执业记分通知：病历书写不及时")
        .first
    )
    score_notice_id = (await score_notice.get_attribute("data-testid")).removeprefix("notice-")
    await score_notice.click()
    assert "1 分" in await page.inner_text(f"[data-testid=notice-body-{score_notice_id}]")
    await page.click(f"[data-testid=appeal-{score_notice_id}]")
    form = page.locator("[data-testid=appeal-form]")
    await form.wait_for()
    await page.get_by_role("button", name="提交申诉").click()
    assert "请填写申诉理由" in await form.inner_text()  # nothing sent without a reason
    statuses = "{ penaltyScores { id status appealReason } }"
    mine = {
        s["id"]: s for s in (await graphql(live_server, statuses, token=token))["penaltyScores"]
    }
    assert mine[open_score]["status"] == "notified"
    await page.get_by_label("申诉理由").fill("当日为急诊抢救，病程记录已于次日补记，请复核。")
    await screenshot(page, "phone-doctor-appeal-form")
    await page.get_by_role("button", name="提交申诉").click()
    await page.wait_for_selector("text=已提交申诉，医务处将复核")
    await form.wait_for(state="hidden")
    await page.wait_for_selector("[data-testid=appeal-pending]")
    assert not await page.locator(f"[data-testid=appeal-{score_notice_id}]").count()
    await page.wait_for_selector(".van-toast", state="hidden")
    await screenshot(page, "phone-doctor-appealed")

    mine = {
        s["id"]: s for s in (await graphql(live_server, statuses, token=token))["penaltyScores"]
    }
    assert mine[open_score]["status"] == "appealing"
    assert mine[open_score]["appealReason"].startswith("当日为急诊抢救")


async def test_chief_reads_the_penalty_and_the_ranking(hospital, live_server, new_context) -> None:
    await penalty_scene(live_server)
    page = await (await new_context(viewport=PHONE)).new_page()
    await sign_in(page, "chief.wang")
    await page.locator("[data-testid=tile-notices-badge]").wait_for()
    await page.wait_for_selector(".van-toast", state="hidden")
    await screenshot(page, "phone-chief-home-unread")
    await page.click("[data-testid=tile-notices]")
    await open_penalty_notice(page)
    assert "李医生" in await page.inner_text("[data-testid=notices]")
    assert "inapp" not in await page.inner_text("[data-testid=notices]")
    await screenshot(page, "phone-chief-penalty-notice")

    await page.goto("/")
    await page.click("[data-testid=tile-rankings]")
    await page.wait_for_selector("[data-testid=ranking-row]")
    today = dt.datetime.now(SHANGHAI).date()
    period = await page.inner_text("[data-testid=rankings-period]")
    assert period == f"统计期：{today - dt.timedelta(days=364):%Y-%m-%d} 至 {today:%Y-%m-%d}"
    assert "已确认的不良执业记分" in await page.inner_text("[data-testid=rankings-intro]")
    row = await page.locator("[data-testid=ranking-row]").first.inner_text()
    # dr.li's demo points (1 + 1) and today's 6, confirmed; the open score does not count.
    assert "普外科" in row and "8 分 · 3 次" in row
    await page.wait_for_selector("[data-testid=rankings] canvas")
    await screenshot(page, "phone-chief-rankings")
    # A period with nothing in it says so.
    await page.fill("[data-testid=range-to]", "2024-01-31")
    await page.fill("[data-testid=range-from]", "2024-01-01")
    await page.wait_for_selector("[data-testid=rankings-empty]")
    assert "该期间没有数据" in await page.inner_text("[data-testid=rankings]")
    assert (
        await page.inner_text("[data-testid=rankings-period]") == "统计期：2024-01-01 至 2024-01-31"
    )


async def test_medical_affairs_dashboard_headline_and_empty_period(
    hospital, live_server, new_context
) -> None:
    await submit_grade4_application(live_server)
    page = await (await new_context(viewport=PHONE)).new_page()
    await sign_in(page, "ma.zhao")
    await page.click("[data-testid=tile-dashboard]")
    headline = page.locator("[data-testid=headline]")
    await page.wait_for_selector("[data-testid=headline]:has-text('提交 1 份')")
    text = await headline.inner_text()
    for label in ("24 小时完成率", "急诊 2 小时完成率", "审批用时中位数", "超时未办"):
        assert label in text, label
    # One submitted, none decided yet: 0% done within 24 h, no median, none overdue.
    assert (await page.inner_text("[data-testid=figure-overdue]")).startswith("0")
    assert (await page.inner_text("[data-testid=figure-24h]")).startswith("0%")
    assert (await page.inner_text("[data-testid=figure-median]")).startswith("—")
    await page.wait_for_selector(".van-toast", state="hidden")
    await screenshot(page, "phone-affairs-dashboard", full_page=True)

    await page.fill("[data-testid=range-to]", "2024-01-31")
    await page.fill("[data-testid=range-from]", "2024-01-01")
    await page.wait_for_selector("[data-testid=headline]:has-text('提交 0 份')")
    await page.wait_for_selector("[data-testid=empty-penalties]")
    for chart in ("completion", "overdue", "workload", "noshow", "penalties"):
        assert await page.locator(f"[data-testid=empty-{chart}]").is_visible(), chart
    assert not await page.locator("[data-testid=dashboard] canvas").count()
    assert not await page.locator("[data-testid=dashboard] [role=alert]").count(), (
        await page.locator("[data-testid=dashboard] [role=alert]").all_inner_texts()
    )
    await screenshot(page, "phone-affairs-dashboard-empty", full_page=True)
