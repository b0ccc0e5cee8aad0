"""The Official Account: signed safe-mode messages, menu, web OAuth, binding, booking."""

from __future__ import annotations

import time
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

from api.services import Services
from tests.conftest import GraphQLClient
from tests.simulators.platforms import OA_AES_KEY, oa_callback, read_wechat_reply
from tests.treatments.helpers import local_today

MY_ORDERS = "{ myOrders { id item { code } remainingSessions paymentStatus } }"
SLOTS = "query($c: String!, $f: Date!, $t: Date!) { availableSlots(itemCode: $c, from: $f, to: $t) { id startsAt remaining } }"
BOOK = "mutation($s: ID!) { bookAppointment(slotId: $s) { id status channel } }"
CANCEL = "mutation($id: ID!) { cancelAppointment(id: $id) { id status } }"


def message(openid: str, content: str) -> dict:
    return {
        "ToUserName": "gh_sim",
        "FromUserName": openid,
        "CreateTime": int(time.time()),
        "MsgType": "text",
        "Content": content,
        "MsgId": 1,
    }


async def test_safe_mode_message_gets_an_encrypted_reply_with_the_link(bots: Services, bot_http):
    params, body = oa_callback(message("openid-new", "预约治疗"))
    answer = await bot_http.post("/bots/wechat-oa/callback", params=params, content=body.encode())
    assert answer.status_code == 200
    reply = read_wechat_reply(answer.text, OA_AES_KEY)
    assert (
        "<MsgType><![CDATA[text]]></MsgType>" in reply
        and "/bots/wechat-oa/oauth?next=%2Fpatient%2Fbook" in reply
    )

    # the same request again is a replay; a forged signature and an old timestamp are refused
    assert (
        await bot_http.post("/bots/wechat-oa/callback", params=params, content=body.encode())
    ).status_code == 403
    forged, forged_body = oa_callback(message("openid-new", "我的预约"), token="forged")
    assert (
        await bot_http.post("/bots/wechat-oa/callback", params=forged, content=forged_body.encode())
    ).status_code == 403
    old, old_body = oa_callback(message("openid-new", "随访"), timestamp=int(time.time()) - 3600)
    assert (
        await bot_http.post("/bots/wechat-oa/callback", params=old, content=old_body.encode())
    ).status_code == 403


async def test_menu_has_the_three_entries(bots: Services, platform_sim):
    from bots.wechat_oa import publish_menu

    await publish_menu(bots)
    assert [b["name"] for b in platform_sim.state.menus[-1]] == ["预约治疗", "我的预约", "随访"]


async def oauth_redirect(http, platform_sim, openid: str, next_page: str = "/patient/book") -> str:
    start = await http.get("/bots/wechat-oa/oauth", params={"next": next_page})
    assert start.status_code == 302
    authorize = urlparse(start.headers["location"])
    query = parse_qs(authorize.query)
    assert query["scope"] == ["snsapi_base"] and authorize.fragment == "wechat_redirect"
    # WeChat sends the user back with a code and the state
    back = await http.get(
        "/bots/wechat-oa/oauth/callback",
        params={"code": platform_sim.auth_code("wechat_oa", openid), "state": query["state"][0]},
    )
    assert back.status_code == 302
    return back.headers["location"]


async def test_patient_binds_books_and_cancels_through_the_official_account(
    bots: Services, bot_http, platform_sim
):
    openid = "openid-zhou-second-phone"
    location = await oauth_redirect(bot_http, platform_sim, openid)
    assert location.startswith("/patient/bind?next=%2Fpatient%2Fbook#ticket=")
    ticket = location.split("#ticket=")[1]

    wrong = await bot_http.post(
        "/bots/wechat-oa/bind",
        json={
            "ticket": ticket,
            "name": "周建国",
            "idNumber": "340202196203141234",
            "phone": "13900000000",
        },
    )
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "VALIDATION"
    right = {
        "ticket": ticket,
        "name": "周建国",
        "idNumber": "340202196203141234",
        "phone": "13805531234",
    }
    # The archive is bound to the first phone's openid: the three values do not move it.
    taken = await bot_http.post("/bots/wechat-oa/bind", json=right)
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "ALREADY_BOUND"
    # The desk checks the person and unbinds; then the new phone binds.
    ma = await GraphQLClient(bot_http).as_user("ma.zhao")
    pid = (await ma.data('{ patients(search: "P0001") { id } }'))["patients"][0]["id"]
    unbind = (
        'mutation($p: ID!) { unbindPatientWechat(patientId: $p, reason: "换手机，身份证核验") }'
    )
    assert (await ma.data(unbind, {"p": pid}))["unbindPatientWechat"] == 1
    bound = await bot_http.post(
        "/bots/wechat-oa/bind",
        json={
            "ticket": ticket,
            "name": "周建国",
            "idNumber": "340202196203141234",
            "phone": "13805531234",
        },
    )
    assert bound.status_code == 200 and bound.json()["username"] == "patient.zhou"

    # next time the OAuth goes straight to the page with a token
    location = await oauth_redirect(bot_http, platform_sim, openid, "/patient/appointments")
    assert location.startswith("/patient/appointments#token=")
    zhou = GraphQLClient(bot_http, location.split("#token=")[1])
    orders = (await zhou.data(MY_ORDERS))["myOrders"]
    assert orders[0]["item"]["code"] == "PHYSIO" and orders[0]["paymentStatus"] == "PAID"
    today = local_today()
    slots = (
        await zhou.data(
            SLOTS,
            {"c": "PHYSIO", "f": today.isoformat(), "t": (today + timedelta(days=14)).isoformat()},
        )
    )["availableSlots"]
    booked = (await zhou.data(BOOK, {"s": slots[0]["id"]}))["bookAppointment"]
    assert booked["status"] == "booked" and booked["channel"] == "official_account"
    cancelled = (await zhou.data(CANCEL, {"id": booked["id"]}))["cancelAppointment"]
    assert cancelled["status"] == "cancelled"


async def test_binding_guesses_are_limited_and_open_redirects_refused(
    bots: Services, bot_http, platform_sim
):
    location = await oauth_redirect(
        bot_http, platform_sim, "openid-guesser", "https://evil.example/"
    )
    assert location.startswith(
        "/patient/bind?next=%2Fpatient%2Fappointments#ticket="
    )  # not the outside URL
    ticket = location.split("#ticket=")[1]
    codes = []
    for i in range(6):
        answer = await bot_http.post(
            "/bots/wechat-oa/bind",
            json={
                "ticket": ticket,
                "name": "周建国",
                "idNumber": f"34020219620314{i:04d}",
                "phone": "13805531234",
            },
        )
        codes.append(answer.json()["error"]["code"])
    assert codes == ["VALIDATION"] * 5 + ["RATE_LIMITED"]
    # even the right details wait now
    right = await bot_http.post(
        "/bots/wechat-oa/bind",
        json={
            "ticket": ticket,
            "name": "周建国",
            "idNumber": "340202196203141234",
            "phone": "13805531234",
        },
    )
    assert right.status_code == 429
    assert (
        await bot_http.post(
            "/bots/wechat-oa/bind",
            json={"ticket": "forged", "name": "a", "idNumber": "b", "phone": "c"},
        )
    ).status_code == 401
