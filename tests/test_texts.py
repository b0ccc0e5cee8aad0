"""Server texts leave the server split per language: errors, pre-check findings and
notices carry `{zh, en}`, so no client cuts "中文 / English" apart (and loses half of a
text whose Chinese holds " / ")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from api import texts
from api.services import Services
from tests.conftest import GraphQLClient, error_code

RECORD = """mutation($i: PenaltyScoreInput!) { recordPenaltyScore(input: $i) { id } }"""
CONFIRM = "mutation($id: ID!) { confirmPenaltyScore(id: $id) { id } }"
PENALTIES = "query { penalties { id kind measure } }"
ISSUE = "mutation($id: ID!) { issuePenalty(id: $id) { id status } }"
NOTICES = "query { myNotices { kind title body titleText { zh en } bodyText { zh en } } }"


def test_split_keeps_a_chinese_part_that_holds_the_separator() -> None:
    assert texts.split("用户不存在 / user not found: nobody") == texts.Texts(
        "用户不存在", "user not found: nobody"
    )
    # The first " / " is inside the Chinese; the English starts after the second.
    assert texts.split("处理：通报批评 / 扣绩效 / measure: reprimand") == texts.Texts(
        "处理：通报批评 / 扣绩效", "measure: reprimand"
    )
    assert texts.split("只有中文") == texts.Texts("只有中文", "只有中文")
    assert texts.split("English only / still English") == texts.Texts(
        "English only / still English", "English only / still English"
    )
    body = texts.split_lines("物理治疗 12月05日 10:00\n注意事项 / Notes: wear loose clothes")
    assert body == texts.Texts(
        "物理治疗 12月05日 10:00\n注意事项", "物理治疗 12月05日 10:00\nNotes: wear loose clothes"
    )


async def test_errors_carry_each_language(gql: GraphQLClient, demo: Services) -> None:
    wang = await gql.as_user("chief.wang")
    err = await wang.error('{ staff(search: "%s") { username } }' % ("长" * 60))
    assert error_code(err) == "VALIDATION" and err["extensions"]["field"] == "search"
    assert err["extensions"]["messages"] == {"zh": "搜索词过长", "en": "search term too long"}


async def test_a_penalty_notice_keeps_its_whole_decision_in_each_language(
    gql: GraphQLClient, demo: Services
) -> None:
    ma = await gql.as_user("ma.zhao")
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
    penalty = next(p for p in (await ma.data(PENALTIES))["penalties"] if p["kind"] == "one_off")
    await ma.data(ISSUE, {"id": penalty["id"]})
    li = await gql.as_user("dr.li")
    notice = next(n for n in (await li.data(NOTICES))["myNotices"] if n["kind"] == "penalty.issued")
    # The demo rule's measure is written in both languages ("暂停手术权限30天 / surgical …"):
    # each language's text carries its own part whole, beside the points and the status.
    zh_measure, en_measure = penalty["measure"].split(" / ", 1)
    assert f"处理决定：{zh_measure}" in notice["bodyText"]["zh"]
    assert "points" not in notice["bodyText"]["zh"] and en_measure not in notice["bodyText"]["zh"]
    assert f"Measure: {en_measure}" in notice["bodyText"]["en"]
    assert "/" not in notice["titleText"]["zh"] and notice["titleText"]["en"]
    # The platforms' one-text messages keep both languages.
    assert " / " in notice["body"]
