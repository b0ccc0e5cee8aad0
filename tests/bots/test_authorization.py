"""The card and binding paths refuse what GraphQL refuses: patients never bind a staff
platform or decide from a card, another user's tap leaves the holder's WeCom card alone,
the Official Account callback without its token accepts nothing, and an archive's
identity cannot be taken over through a therapist's registration or a second binding."""

from __future__ import annotations

import json
import logging
import time

import sqlalchemy as sa

from api.audit import verify_chains
from api.models.audit import AuditEvent
from api.models.bots import BotBindingLink, BotCard
from api.models.patients import Patient
from api.models.people import ExternalIdentity, User
from api.services import Services
from bots import cards
from tests.bots.conftest import settled_client
from tests.bots.helpers import (
    assert_dingtalk_success,
    card_of,
    dingtalk_tap,
    start_grade4,
    task_statuses,
    wecom_tap,
)
from tests.conftest import GraphQLClient, error_code
from tests.simulators.platforms import oa_callback, platform_signature, simulated_settings

DECIDE = "mutation($t: ID!) { decideTask(taskId: $t, decision: APPROVE) { id status } }"
REGISTER = "mutation($i: PatientArchiveInput!) { registerTreatmentPatient(input: $i) { id name } }"
CORRECT = """mutation($p: ID!, $r: String!, $phone: String) {
  correctPatientIdentity(patientId: $p, reason: $r, phone: $phone) { id phone } }"""
ZHOU = {"name": "周建国", "idNumber": "340202196203141234", "phone": "13805531234"}


async def _count(services: Services, model: type, *where: sa.ColumnElement[bool]) -> int:
    async with services.db.session() as s:
        return (await s.scalar(sa.select(sa.func.count()).select_from(model).where(*where))) or 0


async def _identities(services: Services) -> list[tuple[int, str, str]]:
    async with services.db.session() as s:
        rows = await s.execute(
            sa.select(
                ExternalIdentity.user_id, ExternalIdentity.provider, ExternalIdentity.external_id
            ).order_by(ExternalIdentity.id)
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


async def _user_id(services: Services, username: str) -> int:
    async with services.db.session() as s:
        return (await s.execute(sa.select(User.id).where(User.username == username))).scalar_one()


async def test_a_patient_cannot_bind_dingtalk_and_the_link_stays_usable(
    bots: Services, bot_http, platform_sim
) -> None:
    code = platform_sim.auth_code("dingtalk", "dt-someone")
    answer = (await bot_http.post("/bots/dingtalk/login", json={"code": code})).json()
    link_token = answer["bindUrl"].split("token=")[1]
    before = await _identities(bots)

    zhou = await GraphQLClient(bot_http).as_user("patient.zhou")
    refused = await bot_http.post(
        "/bots/bind",
        json={"token": link_token},
        headers={"Authorization": f"Bearer {zhou.token}"},
    )
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"
    # A made-up link gets the same answer: a patient learns nothing about links.
    made_up = await bot_http.post(
        "/bots/bind", json={"token": "x" * 32}, headers={"Authorization": f"Bearer {zhou.token}"}
    )
    assert made_up.status_code == 403
    assert await _identities(bots) == before
    async with bots.db.session() as s:
        links = list((await s.execute(sa.select(BotBindingLink))).scalars())
    assert [link.used_at for link in links] == [None]

    # The link still binds the staff member it was meant for.
    qian = await GraphQLClient(bot_http).as_user("dr.qian")
    bound = await bot_http.post(
        "/bots/bind", json={"token": link_token}, headers={"Authorization": f"Bearer {qian.token}"}
    )
    assert bound.status_code == 200
    assert (await _identities(bots))[-1] == (
        await _user_id(bots, "dr.qian"),
        "dingtalk",
        "dt-someone",
    )


async def test_a_card_tap_applies_the_staff_rule_of_graphql(
    bots: Services, bot_http, platform_sim
) -> None:
    """A task that reached a patient before the rule (data from an older release): neither
    the card nor GraphQL lets the patient decide it."""
    instance_id = await start_grade4(bots)
    await cards.sweep(bots)
    head_card = await card_of(bots, instance_id, "chief.wang")
    zhou_id = await _user_id(bots, "patient.zhou")
    async with bots.db.transaction() as s:
        s.add(ExternalIdentity(user_id=zhou_id, provider="dingtalk", external_id="dt-zhou"))
        await s.execute(
            sa.text("UPDATE approval_task SET assignee_id = :u WHERE id = :t"),
            {"u": zhou_id, "t": head_card.task_id},
        )
    history = await _count(bots, AuditEvent, AuditEvent.stream == f"approval:{instance_id}")

    assert_dingtalk_success(await dingtalk_tap(bot_http, head_card.card_key, "dt-zhou"))
    assert await task_statuses(bots, instance_id) == [("head", "pending")]
    zhou = await GraphQLClient(bot_http).as_user("patient.zhou")
    assert error_code(await zhou.error(DECIDE, {"t": str(head_card.task_id)})) == "FORBIDDEN"
    # Nor does the patient read it: no task in the list, the approval "not there".
    assert (await zhou.data("{ myTasks { id } }"))["myTasks"] == []
    instance = await zhou.error(
        "query($i: ID!) { approvalInstance(id: $i) { id } }", {"i": str(instance_id)}
    )
    assert error_code(instance) == "NOT_FOUND"
    assert await task_statuses(bots, instance_id) == [("head", "pending")]
    assert await _count(bots, AuditEvent, AuditEvent.stream == f"approval:{instance_id}") == history


async def test_another_users_wecom_tap_keeps_the_holders_response_code(
    bots: Services, bot_http, platform_sim
) -> None:
    # WeCom: each template_card_event carries a single-use ResponseCode that updates the
    # card of the user who clicked (developer.work.weixin.qq.com/document/path/90240,
    # "模板卡片事件推送"; update: /document/path/94888 "更新模版卡片消息").
    instance_id = await start_grade4(bots)
    await cards.sweep(bots)
    card = await card_of(bots, instance_id, "chief.wang", "wecom")
    held = card.response_code
    assert held

    # dr.li taps chief.wang's card (a forwarded card) with his own event's code.
    assert (
        await wecom_tap(bot_http, card.card_key, "dr.li", response_code="rc-of-dr-li")
    ).status_code == 200
    assert await task_statuses(bots, instance_id) == [("head", "pending")]
    async with bots.db.session() as s:
        after = await s.get(BotCard, card.id)
    assert after.response_code != "rc-of-dr-li" and after.last_error is None
    assert "rc-of-dr-li" not in platform_sim.state.wecom_cards

    # The holder's own tap still decides and updates the card with the holder's code.
    code = platform_sim.event_response_code(card.card_key)
    assert (
        await wecom_tap(bot_http, card.card_key, "chief.wang", response_code=code)
    ).status_code == 200
    assert await task_statuses(bots, instance_id) == [
        ("head", "approved"),
        ("ma_sign", "pending"),
        ("vp_sign", "pending"),
    ]
    assert platform_sim.state.wecom_cards[code]["used"]


async def test_official_account_callback_without_a_token_accepts_nothing(
    bots: Services, platform_sim, redis_url, caplog
) -> None:
    # The server-address check signs sha1(sort(token, timestamp, nonce))
    # (developers.weixin.qq.com/doc/offiaccount/Basic_Information/Access_Overview.html):
    # with no token configured anyone can compute that signature.
    settings = simulated_settings(
        bots.settings, platform_sim, redis_url=redis_url, wechat_oa_token=None
    )
    unconfigured = Services.build(settings, db=bots.db)
    timestamp, nonce = str(int(time.time())), "20261202"
    handshake = {
        "signature": platform_signature("", timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "echostr": "echo-me",
    }
    fields = {
        "ToUserName": "gh_sim",
        "FromUserName": "openid-anyone",
        "CreateTime": int(time.time()),
        "MsgType": "text",
        "Content": "预约",
        "MsgId": 7,
    }
    params, body = oa_callback(fields, token="")
    with caplog.at_level(logging.ERROR, logger="bedside.bots.wechat_oa"):
        async with settled_client(unconfigured) as client:
            get = await client.get("/bots/wechat-oa/callback", params=handshake)
            post = await client.post("/bots/wechat-oa/callback", params=params, content=body)
    assert get.status_code == post.status_code == 404
    assert get.json()["error"]["code"] == post.json()["error"]["code"] == "NOT_CONFIGURED"
    assert "echo-me" not in get.text and "预约" not in post.text
    assert any("BEDSIDE_WECHAT_OA_TOKEN" in r.getMessage() for r in caplog.records)
    platforms = unconfigured.extras.get("platforms")
    if platforms is not None:
        await platforms.aclose()


async def _oa_ticket(http, platform_sim, openid: str) -> str:
    start = await http.get("/bots/wechat-oa/oauth", params={"next": "/patient/book"})
    from urllib.parse import parse_qs, urlparse

    state = parse_qs(urlparse(start.headers["location"]).query)["state"][0]
    back = await http.get(
        "/bots/wechat-oa/oauth/callback",
        params={"code": platform_sim.auth_code("wechat_oa", openid), "state": state},
    )
    return back.headers["location"].split("#ticket=")[1]


async def _zhou_archive(services: Services) -> tuple[int, str, str | None, str | None]:
    async with services.db.session() as s:
        p = (await s.execute(sa.select(Patient).where(Patient.mrn == "P0001"))).scalar_one()
        return p.id, p.name, p.id_number_hash, p.phone_hash


async def test_a_therapist_cannot_take_over_a_patients_identity(
    bots: Services, bot_http, platform_sim
) -> None:
    before = await _zhou_archive(bots)
    pid = before[0]
    identities = await _identities(bots)
    sun = await GraphQLClient(bot_http).as_user("pt.sun")  # may see P0001 (rehabilitation)
    thief = {"name": "冒名者", "idNumber": "110101199001011234", "phone": "13900009999"}
    for supplied, field in (
        ({"mrn": "P0001", **thief}, "name"),
        ({"mrn": "P0001", **ZHOU, "phone": thief["phone"]}, "phone"),
        ({"mrn": "P0001", **ZHOU, "idNumber": thief["idNumber"]}, "idNumber"),
    ):
        err = await sun.error(REGISTER, {"i": supplied})
        assert error_code(err) == "IDENTITY_MISMATCH" and err["extensions"]["field"] == field
    assert await _zhou_archive(bots) == before
    assert await _count(bots, AuditEvent, AuditEvent.stream == f"patient:{pid}") == 0
    # The same identity again is fine (registering an existing patient for treatment).
    same = (await sun.data(REGISTER, {"i": {"mrn": "P0001", **ZHOU}}))["registerTreatmentPatient"]
    assert same["name"] == "周建国"

    # Binding another WeChat account: the thief's values match nothing; even the real
    # three values do not move an archive that is already bound.
    ticket = await _oa_ticket(bot_http, platform_sim, "openid-thief")
    wrong = await bot_http.post("/bots/wechat-oa/bind", json={"ticket": ticket, **thief})
    assert wrong.status_code == 400 and "token" not in wrong.json()
    taken = await bot_http.post("/bots/wechat-oa/bind", json={"ticket": ticket, **ZHOU})
    assert taken.status_code == 409 and "token" not in taken.json()
    error = taken.json()["error"]
    assert error["code"] == "ALREADY_BOUND" and "服务台" in error["message"]
    assert await _identities(bots) == identities
    assert await _count(bots, User, User.username.like("patient.%")) == 1


async def test_identity_is_corrected_by_medical_affairs_into_the_patients_history(
    bots: Services, bot_http
) -> None:
    before = await _zhou_archive(bots)
    pid = before[0]
    variables = {"p": str(pid), "r": "患者更换手机号，持身份证到窗口核验", "phone": "13911112222"}
    sun = await GraphQLClient(bot_http).as_user("pt.sun")
    assert error_code(await sun.error(CORRECT, variables)) == "FORBIDDEN"
    zhou = await GraphQLClient(bot_http).as_user("patient.zhou")
    assert error_code(await zhou.error(CORRECT, variables)) == "FORBIDDEN"
    ma = await GraphQLClient(bot_http).as_user("ma.zhao")
    for bad, field in (
        ({"r": "  "}, "reason"),
        # Unstorable text is refused before the resolver runs, naming the variable.
        ({"r": "核验\x00"}, "r"),
        ({"phone": "1" * 65}, "phone"),
        ({"phone": "13805531234"}, "name"),  # the phone it already has: nothing to correct
    ):
        err = await ma.error(CORRECT, {**variables, **bad})
        assert error_code(err) == "VALIDATION" and err["extensions"]["field"] == field, bad
    # A lone surrogate, as a client's JSON escape (\ud800) can carry it.
    lone = await bot_http.post(
        "/graphql",
        content=json.dumps({"query": CORRECT, "variables": {**variables, "phone": "139\ud800"}}),
        headers={"content-type": "application/json", "authorization": f"Bearer {ma.token}"},
    )
    [err] = lone.json()["errors"]
    assert error_code(err) == "VALIDATION" and err["extensions"]["field"] == "phone"
    assert await _zhou_archive(bots) == before
    assert await _count(bots, AuditEvent, AuditEvent.stream == f"patient:{pid}") == 0

    corrected = (await ma.data(CORRECT, variables))["correctPatientIdentity"]
    assert corrected["phone"] == "139****2222"
    after = await _zhou_archive(bots)
    assert after[:3] == before[:3] and after[3] != before[3]  # only the phone changed
    async with bots.db.session() as s:
        events = list(
            (
                await s.execute(sa.select(AuditEvent).where(AuditEvent.stream == f"patient:{pid}"))
            ).scalars()
        )
        assert await verify_chains(s) == []
    [event] = events
    change = event.data["changes"]["phone"]
    assert event.action == "identity_corrected" and event.data["reason"] == variables["r"]
    assert change["old"]["masked"] == "138****1234" and change["new"]["masked"] == "139****2222"
    assert "13805531234" not in str(event.data) and "13911112222" not in str(event.data)
    assert event.actor_id == await _user_id(bots, "ma.zhao")


async def test_the_desk_unbinds_and_the_old_sessions_end(bots: Services, bot_http) -> None:
    pid = (await _zhou_archive(bots))[0]
    unbind = "mutation($p: ID!, $r: String!) { unbindPatientWechat(patientId: $p, reason: $r) }"
    variables = {"p": str(pid), "r": "本人持身份证到服务台，旧手机遗失"}
    zhou = await GraphQLClient(bot_http).as_user("patient.zhou")
    identities = await _identities(bots)
    for username in ("pt.sun", "chief.he", "patient.zhou"):
        client = await GraphQLClient(bot_http).as_user(username)
        assert error_code(await client.error(unbind, variables)) == "FORBIDDEN", username
    assert await _identities(bots) == identities
    assert (await zhou.data("{ me { username } }"))["me"]["username"] == "patient.zhou"

    ma = await GraphQLClient(bot_http).as_user("ma.zhao")
    assert (await ma.data(unbind, variables))["unbindPatientWechat"] == 1
    zhou_id = await _user_id(bots, "patient.zhou")
    assert [i for i in await _identities(bots) if i[0] == zhou_id] == []
    assert error_code(await zhou.error("{ me { username } }")) == "UNAUTHENTICATED"
    async with bots.db.session() as s:
        [event] = (
            (await s.execute(sa.select(AuditEvent).where(AuditEvent.stream == f"patient:{pid}")))
            .scalars()
            .all()
        )
        assert await verify_chains(s) == []
    assert event.action == "wechat_unbound" and event.data["reason"] == variables["r"]
    assert "demo-openid-zhou" not in str(event.data)
    assert (await ma.data(unbind, variables))["unbindPatientWechat"] == 0  # nothing left
