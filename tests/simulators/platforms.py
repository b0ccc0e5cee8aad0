"""A local simulator of the DingTalk, WeCom and Official Account HTTP APIs.

A Starlette app served by uvicorn on a free 127.0.0.1 port (in a thread, so tests and the
app under test reach it over real HTTP). It issues tokens that expire, refuses calls
with a missing, wrong or expired token or the wrong method, checks each body's required
fields and types, records every message and card sent or updated, and can answer with the
platforms' rate-limit errors on demand.

It also builds callbacks the way the platforms do — AES-256-CBC with the key from the
EncodingAESKey, IV = first 16 key bytes, PKCS#7 to 32-byte blocks over
random(16) + length(4, network order) + message + receiver id, and a sha1 signature over
the sorted token, timestamp, nonce and ciphertext — written here independently of the SDKs
the code under test uses.

Fixtures: `platform_sim` (a fresh state per test on one server per session) and the helper
`simulated_settings(settings, sim)`. Use from a conftest:
`from tests.simulators.platforms import platform_sim, platform_sim_server  # noqa: F401`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

# Credentials the simulator knows; `simulated_settings` puts them into Settings.
DINGTALK = {
    "app_key": "dingsimappkey0001",
    "app_secret": "sim-dingtalk-secret",
    "agent_id": "3001",
    "corp_id": "dingsimcorp0001",
}
WECOM = {"corp_id": "wwsimcorp0001", "secret": "sim-wecom-secret", "agent_id": "1000002"}
OA = {"app_id": "wxsimapp00000001", "secret": "sim-oa-secret"}
CALLBACK_TOKEN = "simCallbackToken"
CARD_API_SECRET = "sim-card-callback-api-secret"


def _aes_key(seed: str) -> str:
    """A 43-character EncodingAESKey (base64 of 32 bytes without the '=')."""
    return base64.b64encode(hashlib.sha256(seed.encode()).digest()).decode().rstrip("=")


DINGTALK_AES_KEY = _aes_key("dingtalk")
WECOM_AES_KEY = _aes_key("wecom")
OA_AES_KEY = _aes_key("wechat_oa")


# -- the platforms' callback crypto, written from their docs -------------------------------
def platform_encrypt(plaintext: str, encoding_aes_key: str, receiver_id: str) -> str:
    key = base64.b64decode(encoding_aes_key + "=")
    raw = plaintext.encode()
    body = os.urandom(16) + struct.pack(">I", len(raw)) + raw + receiver_id.encode()
    padder = padding.PKCS7(256).padder()  # the platforms pad to 32-byte blocks
    padded = padder.update(body) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


def platform_decrypt(ciphertext: str, encoding_aes_key: str) -> tuple[str, str]:
    """(plaintext, receiver id) — to read what the app under test answered."""
    key = base64.b64decode(encoding_aes_key + "=")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(base64.b64decode(ciphertext)) + decryptor.finalize()
    plain = plain[: -plain[-1]]
    length = struct.unpack(">I", plain[16:20])[0]
    return plain[20 : 20 + length].decode(), plain[20 + length :].decode()


def platform_signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def dingtalk_callback(
    payload: dict[str, Any],
    *,
    timestamp_ms: int | None = None,
    nonce: str | None = None,
    token: str = CALLBACK_TOKEN,
) -> tuple[dict[str, str], dict[str, str]]:
    """(query params, JSON body) of a DingTalk HTTP callback carrying `payload`."""
    timestamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    nonce = nonce or secrets.token_hex(8)
    encrypt = platform_encrypt(
        json.dumps(payload, ensure_ascii=False), DINGTALK_AES_KEY, DINGTALK["app_key"]
    )
    params = {
        "msg_signature": platform_signature(token, timestamp, nonce, encrypt),
        "timestamp": timestamp,
        "nonce": nonce,
    }
    return params, {"encrypt": encrypt}


def dingtalk_card_tap(
    *,
    out_track_id: str,
    userid: str,
    action: str,
    params: dict[str, Any] | None = None,
    component_id: str | None = None,
) -> dict[str, Any]:
    """The card callback DingTalk sends when a button with a 回传请求 action is tapped.

    Shape from 互动卡片 › 事件回调 (https://open.dingtalk.com/document/development/event-callback-card):
    `{type: actionCallback, outTrackId, corpId, userId, content}` where `content` is a JSON
    string `{"cardPrivateData": {"actionIds": [<the component's id>], "params": {…}}}`; the
    parameters configured on the 回传请求 (here `action`) travel in `params`. The doc's own
    example has actionIds ["1"] beside params {"action": "accept"}, so the component id is
    not the action: it is set to the template's component id (docs/dingtalk-card.md)."""
    content = {
        "cardPrivateData": {
            "actionIds": [component_id or f"btn_{action}"],
            "params": {"action": action, **(params or {})},
        }
    }
    return {
        "type": "actionCallback",
        "outTrackId": out_track_id,
        "corpId": DINGTALK["corp_id"],
        "userId": userid,
        "content": json.dumps(content, ensure_ascii=False),
    }


def dingtalk_card_signature(api_secret: str, timestamp: str) -> str:
    """calcSignature(apiSecret, ts) = base64(HMAC-SHA256(apiSecret, str(ts))) — 事件回调 ›
    回调签名验证 (https://open.dingtalk.com/document/development/event-callback-card)."""
    import hmac

    return base64.b64encode(
        hmac.new(api_secret.encode(), timestamp.encode(), hashlib.sha256).digest()
    ).decode()


def wechat_xml(fields: dict[str, Any]) -> str:
    parts = []
    for name, value in fields.items():
        if isinstance(value, int):
            parts.append(f"<{name}>{value}</{name}>")
        else:
            parts.append(f"<{name}><![CDATA[{value}]]></{name}>")
    return "<xml>" + "".join(parts) + "</xml>"


def wecom_callback(
    fields: dict[str, Any],
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
    token: str = CALLBACK_TOKEN,
) -> tuple[dict[str, str], str]:
    """(query params, XML body) of a WeCom callback with the event `fields` (safe mode)."""
    timestamp_s = str(timestamp if timestamp is not None else int(time.time()))
    nonce = nonce or str(secrets.randbelow(10**10))
    encrypt = platform_encrypt(wechat_xml(fields), WECOM_AES_KEY, WECOM["corp_id"])
    body = f"<xml><ToUserName><![CDATA[{WECOM['corp_id']}]]></ToUserName><AgentID><![CDATA[{WECOM['agent_id']}]]></AgentID><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    params = {
        "msg_signature": platform_signature(token, timestamp_s, nonce, encrypt),
        "timestamp": timestamp_s,
        "nonce": nonce,
    }
    return params, body


def wecom_echo(
    *, timestamp: int | None = None, nonce: str | None = None, token: str = CALLBACK_TOKEN
) -> tuple[dict[str, str], str]:
    """The GET URL-verification request; returns (params, the plaintext echo expected back)."""
    timestamp_s = str(timestamp if timestamp is not None else int(time.time()))
    nonce = nonce or str(secrets.randbelow(10**10))
    echo_plain = str(secrets.randbelow(10**18))
    echostr = platform_encrypt(echo_plain, WECOM_AES_KEY, WECOM["corp_id"])
    params = {
        "msg_signature": platform_signature(token, timestamp_s, nonce, echostr),
        "timestamp": timestamp_s,
        "nonce": nonce,
        "echostr": echostr,
    }
    return params, echo_plain


def oa_callback(
    fields: dict[str, Any],
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
    token: str = CALLBACK_TOKEN,
) -> tuple[dict[str, str], str]:
    """(query params, XML body) of an Official Account message in safe mode."""
    timestamp_s = str(timestamp if timestamp is not None else int(time.time()))
    nonce = nonce or str(secrets.randbelow(10**10))
    encrypt = platform_encrypt(wechat_xml(fields), OA_AES_KEY, OA["app_id"])
    body = f"<xml><ToUserName><![CDATA[gh_sim]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    params = {
        "signature": platform_signature(token, timestamp_s, nonce),
        "timestamp": timestamp_s,
        "nonce": nonce,
        "openid": str(fields.get("FromUserName", "")),
        "encrypt_type": "aes",
        "msg_signature": platform_signature(token, timestamp_s, nonce, encrypt),
    }
    return params, body


# 参数值内容限制 per key type (the 订阅消息 table the category templates share: thing 20,
# character_string / number / letter 32, phrase 5, …); the types not listed are not cut.
TEMPLATE_LIMITS = {
    "thing": 20,
    "number": 32,
    "letter": 32,
    "symbol": 5,
    "character_string": 32,
    "phrase": 5,
    "phone_number": 17,
    "car_number": 8,
}


def _cut(key: str, value: str) -> str:
    limit = TEMPLATE_LIMITS.get(key.rstrip("0123456789"))
    return value[:limit] if limit else value


def read_wechat_reply(xml_text: str, encoding_aes_key: str) -> str:
    """Decrypt a passive reply (`<xml><Encrypt>…`) into its plaintext XML."""
    import xmltodict

    doc = xmltodict.parse(xml_text)["xml"]
    return platform_decrypt(doc["Encrypt"], encoding_aes_key)[0]


# -- the simulated APIs ------------------------------------------------------------------
@dataclass
class SimState:
    token_ttl: int = 7200
    tokens: dict[str, tuple[str, float]] = field(
        default_factory=dict
    )  # token -> (platform, expires_at)
    token_fetches: Counter[str] = field(default_factory=Counter)
    calls: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    cards: dict[str, dict[str, Any]] = field(default_factory=dict)  # DingTalk outTrackId -> card
    wecom_cards: dict[str, dict[str, Any]] = field(default_factory=dict)  # response_code -> card
    auth_codes: dict[tuple[str, str], str] = field(
        default_factory=dict
    )  # (platform, code) -> user id / openid
    mobiles: dict[tuple[str, str], str] = field(
        default_factory=dict
    )  # (platform, mobile) -> user id
    rate_limits: Counter[str] = field(default_factory=Counter)  # platform -> calls to refuse
    menus: list[Any] = field(default_factory=list)
    # platform -> (departments [{id, name, parent_id}], members [{userid, name, mobile,
    # job_number, departments: [id], status}]); the root department (1) is implied.
    directories: dict[str, tuple[list[dict[str, Any]], list[dict[str, Any]]]] = field(
        default_factory=dict
    )
    # DingTalk card callback registrations: callbackRouteKey -> {callbackUrl, apiSecret}
    card_routes: dict[str, dict[str, str]] = field(default_factory=dict)
    # DingTalk users the robot cannot reach (outside its visible range, 可见范围)
    dingtalk_unreachable: set[str] = field(default_factory=set)
    # Official Account web OAuth: who is using WeChat in the simulated browser, and the
    # account's 网页授权域名 (the host redirect_uri must be on)
    oa_wechat_user: str | None = None
    oa_oauth_domain: str | None = None
    # WeCom web OAuth: the member using WeCom in the simulated browser, the app's 可信域名
    wecom_browser_user: str | None = None
    wecom_trusted_domain: str | None = None
    # Official Account template library entries added by the hospital: id -> its keys;
    # None accepts any id (older tests)
    oa_templates: dict[str, list[str]] | None = None
    # configuration / quota states: the token refused for an IP not whitelisted (40164,
    # WeCom 60020), the template API's daily quota used up (45009)
    oa_ip_blocked: bool = False
    oa_quota_exhausted: bool = False
    wecom_ip_blocked: bool = False
    # WeCom: members the corp does not have (answered in invaliduser), what was dropped
    # beyond the per-member limit, task_ids used, and a shift of the simulator's clock
    wecom_unknown_users: set[str] = field(default_factory=set)
    wecom_dropped: list[dict[str, Any]] = field(default_factory=list)
    wecom_task_ids: set[str] = field(default_factory=set)
    wecom_sends: list[tuple[str, float]] = field(default_factory=list)  # (user, at)
    clock_offset: float = 0.0
    # DingTalk work notices: send results by task_id, users DingTalk does not know
    dingtalk_send_results: dict[int, dict[str, list[str]]] = field(default_factory=dict)
    dingtalk_unknown_users: set[str] = field(default_factory=set)
    dingtalk_notice_contents: set[tuple[str, str]] = field(default_factory=set)


class PlatformSimulator:
    def __init__(self) -> None:
        self.state = SimState()
        self.lock = threading.Lock()
        self.url = ""
        self.app = Starlette(routes=self._routes())

    # test-side controls
    def reset(self) -> None:
        with self.lock:
            self.state = SimState()

    def rate_limit_next(self, platform: str, times: int = 1) -> None:
        self.state.rate_limits[platform] += times

    def auth_code(self, platform: str, user_id: str) -> str:
        code = secrets.token_hex(8)
        self.state.auth_codes[(platform, code)] = user_id
        return code

    def directory_mobile(self, platform: str, mobile: str, user_id: str) -> None:
        self.state.mobiles[(platform, mobile)] = user_id

    def set_directory(
        self, platform: str, departments: list[dict[str, Any]], members: list[dict[str, Any]]
    ) -> None:
        self.state.directories[platform] = (departments, members)

    def event_response_code(self, task_id: str) -> str:
        """The fresh ResponseCode WeCom puts in a template_card_event (updates that card once)."""
        sent = next(
            c
            for c in self.state.wecom_cards.values()
            if c["task_id"] == task_id or str(c["task_id"]).split("@")[0] == task_id
        )
        code = secrets.token_hex(16)
        self.state.wecom_cards[code] = {**sent, "used": False, "updates": []}
        return code

    def dingtalk_tap_request(
        self, out_track_id: str, userid: str, action: str = "approve", **tap: Any
    ) -> dict[str, Any]:
        """What DingTalk sends when `userid` taps a 回传请求 button on the card.

        HTTP cards: the POST to the URL registered for the card's callbackRouteKey, signed
        with that registration's apiSecret → {"mode": "HTTP", "url", "headers", "json"}.
        STREAM cards: the callback's data as the stream delivers it → {"mode": "STREAM",
        "data"}. A HTTP card whose route key was never registered calls back nowhere
        (AssertionError): the docs route callbacks only through a registered key."""
        card = self.state.cards[out_track_id]
        payload = dingtalk_card_tap(out_track_id=out_track_id, userid=userid, action=action, **tap)
        if card["callback_type"] == "STREAM":
            return {"mode": "STREAM", "data": payload}
        route = self.state.card_routes.get(card.get("route_key") or "")
        assert route is not None, "a HTTP card without a registered callbackRouteKey: no callback"
        timestamp = str(int(time.time() * 1000))
        return {
            "mode": "HTTP",
            "url": route["callbackUrl"],
            "headers": {
                "x-ddpaas-signature-timestamp": timestamp,
                "x-ddpaas-signature": dingtalk_card_signature(route["apiSecret"], timestamp),
            },
            "json": payload,
        }

    def expire_tokens(self) -> None:
        with self.lock:
            self.state.tokens = {t: (p, 0.0) for t, (p, _) in self.state.tokens.items()}

    def messages_to(self, platform: str, user_id: str) -> list[dict[str, Any]]:
        return [m for m in self.state.messages if m["platform"] == platform and user_id in m["to"]]

    # helpers
    def _issue(self, platform: str) -> dict[str, Any]:
        token = f"{platform}-{secrets.token_hex(12)}"
        with self.lock:
            self.state.tokens[token] = (platform, time.time() + self.state.token_ttl)
            self.state.token_fetches[platform] += 1
        return {"access_token": token, "expires_in": self.state.token_ttl}

    def _token_ok(self, platform: str, token: str | None) -> bool:
        entry = self.state.tokens.get(token or "")
        return bool(entry and entry[0] == platform and entry[1] > time.time())

    def _rate_limited(self, platform: str) -> bool:
        with self.lock:
            if self.state.rate_limits[platform] > 0:
                self.state.rate_limits[platform] -= 1
                return True
        return False

    def _record_call(self, platform: str, request: Request) -> None:
        self.state.calls.append(
            {"platform": platform, "method": request.method, "path": request.url.path}
        )

    def _routes(self) -> list[Route]:
        return [
            Route("/gettoken", self.dingtalk_gettoken, methods=["GET"]),
            Route(
                "/topapi/message/corpconversation/asyncsend_v2",
                self.dingtalk_work_notice,
                methods=["POST"],
            ),
            Route(
                "/topapi/message/corpconversation/getsendresult",
                self.dingtalk_send_result,
                methods=["POST"],
            ),
            Route("/topapi/v2/user/getuserinfo", self.dingtalk_getuserinfo, methods=["POST"]),
            Route("/topapi/v2/user/getbymobile", self.dingtalk_getbymobile, methods=["POST"]),
            Route(
                "/topapi/v2/department/listsub", self.dingtalk_department_listsub, methods=["POST"]
            ),
            Route("/topapi/v2/user/list", self.dingtalk_user_list, methods=["POST"]),
            Route("/cgi-bin/department/list", self.wecom_department_list, methods=["GET"]),
            Route("/cgi-bin/user/list", self.wecom_user_list, methods=["GET"]),
            Route(
                "/v1.0/card/instances/createAndDeliver", self.dingtalk_card_create, methods=["POST"]
            ),
            Route("/v1.0/card/instances", self.dingtalk_card_update, methods=["PUT"]),
            Route("/v1.0/card/instances/deliver", self.dingtalk_card_deliver, methods=["POST"]),
            Route("/v1.0/card/callbacks/register", self.dingtalk_card_register, methods=["POST"]),
            Route("/cgi-bin/gettoken", self.wecom_gettoken, methods=["GET"]),
            Route("/cgi-bin/message/send", self.wecom_send, methods=["POST"]),
            Route(
                "/cgi-bin/message/update_template_card", self.wecom_update_card, methods=["POST"]
            ),
            Route("/cgi-bin/auth/getuserinfo", self.wecom_getuserinfo, methods=["GET"]),
            Route("/cgi-bin/user/getuserid", self.wecom_getuserid, methods=["POST"]),
            Route("/cgi-bin/token", self.oa_token, methods=["GET"]),
            Route("/cgi-bin/message/template/send", self.oa_template_send, methods=["POST"]),
            Route("/cgi-bin/message/custom/send", self.oa_custom_send, methods=["POST"]),
            Route("/cgi-bin/menu/create", self.oa_menu_create, methods=["POST"]),
            Route("/sns/oauth2/access_token", self.oa_oauth, methods=["GET"]),
            Route("/connect/oauth2/authorize", self.oa_authorize, methods=["GET"]),
        ]

    # -- DingTalk (old API: errcode; v1.0: HTTP status + code) -------------------------
    async def _dingtalk_old(
        self, request: Request
    ) -> tuple[dict[str, Any] | None, JSONResponse | None]:
        self._record_call("dingtalk", request)
        if not self._token_ok("dingtalk", request.query_params.get("access_token")):
            return None, JSONResponse({"errcode": 40014, "errmsg": "不合法的access_token"})
        if self._rate_limited("dingtalk"):
            return None, JSONResponse(
                {"errcode": 90018, "errmsg": "当前企业调用该接口的并发量超过上限"}
            )
        try:
            body = json.loads(await request.body())
        except ValueError:
            return None, JSONResponse({"errcode": 40035, "errmsg": "缺少参数 / body is not JSON"})
        return body, None

    # DingTalk 获取企业内部应用的access_token (GET /gettoken?appkey=&appsecret=;
    # open.dingtalk.com/document/orgapp/obtain-orgapp-token): errcode 0 with access_token
    # and expires_in 7200.
    async def dingtalk_gettoken(self, request: Request) -> JSONResponse:
        q = request.query_params
        if q.get("appkey") != DINGTALK["app_key"] or q.get("appsecret") != DINGTALK["app_secret"]:
            return JSONResponse({"errcode": 40089, "errmsg": "不合法的corpid或corpsecret"})
        return JSONResponse({"errcode": 0, "errmsg": "ok", **self._issue("dingtalk")})

    # DingTalk 发送工作通知 (POST /topapi/message/corpconversation/asyncsend_v2;
    # open.dingtalk.com/document/orgapp/asynchronous-sending-of-enterprise-session-messages):
    # answers a task_id at once; who actually received it is told by getsendresult.
    async def dingtalk_work_notice(self, request: Request) -> JSONResponse:
        body, error = await self._dingtalk_old(request)
        if error:
            return error
        assert body is not None
        msg = body.get("msg") or {}
        problems = []
        if str(body.get("agent_id")) != DINGTALK["agent_id"]:
            problems.append("agent_id")
        if not isinstance(body.get("userid_list"), str) or not body["userid_list"]:
            problems.append("userid_list")
        msgtype = msg.get("msgtype")
        if msgtype not in {"text", "markdown", "action_card", "oa", "link"} or not isinstance(
            msg.get(msgtype), dict
        ):
            problems.append("msg")
        if msgtype == "markdown" and not ({"title", "text"} <= set(msg["markdown"])):
            problems.append("msg.markdown")
        if msgtype == "text" and "content" not in msg["text"]:
            problems.append("msg.text")
        if problems:
            return JSONResponse({"errcode": 40035, "errmsg": "参数错误: " + ",".join(problems)})
        users = body["userid_list"].split(",")
        if len(users) > 100:
            return JSONResponse({"errcode": 40035, "errmsg": "userid_list 超过100"})
        task_id = secrets.randbelow(10**12)
        # 发送工作通知 (https://open.dingtalk.com/document/orgapp/asynchronous-sending-of-enterprise-session-messages):
        # answered ok at once, sent afterwards; "给同一用户发相同内容消息一天仅允许一次" — a repeat is
        # held back by flow control and shows in getsendresult's forbidden list, as does
        # an unknown userid in invalid_user_id_list.
        content = json.dumps(msg, sort_keys=True, ensure_ascii=False)
        result: dict[str, list[str]] = {
            "invalid_user_id_list": [],
            "forbidden_user_id_list": [],
            "failed_user_id_list": [],
            "unread_user_id_list": [],
        }
        reached = []
        for user in users:
            if user in self.state.dingtalk_unknown_users:
                result["invalid_user_id_list"].append(user)
            elif (user, content) in self.state.dingtalk_notice_contents:
                result["forbidden_user_id_list"].append(user)
            else:
                self.state.dingtalk_notice_contents.add((user, content))
                result["unread_user_id_list"].append(user)
                reached.append(user)
        self.state.dingtalk_send_results[task_id] = result
        if reached:
            self.state.messages.append(
                {
                    "platform": "dingtalk",
                    "kind": f"work_notice.{msgtype}",
                    "to": reached,
                    "body": msg,
                    "task_id": task_id,
                }
            )
        return JSONResponse(
            {"errcode": 0, "errmsg": "ok", "task_id": task_id, "request_id": secrets.token_hex(8)}
        )

    async def dingtalk_send_result(self, request: Request) -> JSONResponse:
        """获取工作通知消息的发送结果 (https://open.dingtalk.com/document/orgapp/gets-the-result-of-sending-messages-asynchronously-to-the-enterprise):
        {agent_id, task_id} → send_result {invalid_user_id_list, forbidden_user_id_list,
        failed_user_id_list, read_user_id_list, unread_user_id_list, …}. The simulator's
        send is finished at once; real DingTalk may still be sending (users in no list)."""
        body, error = await self._dingtalk_old(request)
        if error:
            return error
        assert body is not None
        result = self.state.dingtalk_send_results.get(int(body.get("task_id") or 0))
        if result is None or str(body.get("agent_id")) != DINGTALK["agent_id"]:
            return JSONResponse({"errcode": 40035, "errmsg": "task_id / agent_id"})
        return JSONResponse(
            {"errcode": 0, "errmsg": "ok", "send_result": {**result, "read_user_id_list": []}}
        )

    # DingTalk 通过免登码获取用户信息 (POST /topapi/v2/user/getuserinfo with the code from
    # JSAPI requestAuthCode; open.dingtalk.com/document/orgapp/obtain-the-userid-of-a-user-by-using-the-log-free):
    # result.userid of the person using DingTalk.
    async def dingtalk_getuserinfo(self, request: Request) -> JSONResponse:
        body, error = await self._dingtalk_old(request)
        if error:
            return error
        assert body is not None
        userid = self.state.auth_codes.pop(("dingtalk", str(body.get("code"))), None)
        if userid is None:
            return JSONResponse({"errcode": 40078, "errmsg": "不存在的临时授权码"})
        return JSONResponse(
            {
                "errcode": 0,
                "errmsg": "ok",
                "result": {"userid": userid, "name": userid, "sys": False},
            }
        )

    # DingTalk 根据手机号查询用户 (POST /topapi/v2/user/getbymobile;
    # open.dingtalk.com/document/orgapp/query-users-by-phone-number): result.userid.
    async def dingtalk_getbymobile(self, request: Request) -> JSONResponse:
        body, error = await self._dingtalk_old(request)
        if error:
            return error
        assert body is not None
        userid = self.state.mobiles.get(("dingtalk", str(body.get("mobile"))))
        if userid is None:
            return JSONResponse({"errcode": 60121, "errmsg": "找不到该用户"})
        return JSONResponse({"errcode": 0, "errmsg": "ok", "result": {"userid": userid}})

    # Directory, from DingTalk's "获取部门列表" (topapi/v2/department/listsub: the direct
    # sub-departments of dept_id, 1 being the root) and "获取部门用户详情"
    # (topapi/v2/user/list: dept_id, cursor from 0, size at most 100; answers
    # result.has_more / next_cursor / list), open.dingtalk.com/document/orgapp/
    # obtain-the-department-list-v2 and .../queries-the-complete-information-of-a-department-user.
    async def dingtalk_department_listsub(self, request: Request) -> JSONResponse:
        body, error = await self._dingtalk_old(request)
        if error:
            return error
        assert body is not None
        if not isinstance(body.get("dept_id"), int):
            return JSONResponse({"errcode": 40035, "errmsg": "缺少参数 dept_id"})
        departments, _ = self.state.directories.get("dingtalk", ([], []))
        known = {1} | {d["id"] for d in departments}
        if body["dept_id"] not in known:
            return JSONResponse({"errcode": 60003, "errmsg": "部门不存在"})
        result = [
            {
                "dept_id": d["id"],
                "name": d["name"],
                "parent_id": d.get("parent_id", 1),
                "create_dept_group": False,
                "auto_add_user": False,
            }
            for d in departments
            if d.get("parent_id", 1) == body["dept_id"]
        ]
        return JSONResponse({"errcode": 0, "errmsg": "ok", "result": result})

    # DingTalk 获取部门用户详情 (POST /topapi/v2/user/list, paged by cursor and size;
    # open.dingtalk.com/document/orgapp/queries-the-complete-information-of-a-department-user):
    # result.list with userid, name, mobile, job_number; has_more / next_cursor.
    async def dingtalk_user_list(self, request: Request) -> JSONResponse:
        body, error = await self._dingtalk_old(request)
        if error:
            return error
        assert body is not None
        dept_id, cursor, size = body.get("dept_id"), body.get("cursor"), body.get("size")
        if not all(isinstance(v, int) for v in (dept_id, cursor, size)) or not 1 <= size <= 100:
            return JSONResponse({"errcode": 40035, "errmsg": "参数错误: dept_id, cursor, size"})
        _, members = self.state.directories.get("dingtalk", ([], []))
        in_dept = [m for m in members if dept_id in m["departments"]]
        page = in_dept[cursor : cursor + size]
        has_more = cursor + size < len(in_dept)
        result: dict[str, Any] = {
            "has_more": has_more,
            "list": [
                {
                    "userid": m["userid"],
                    "name": m["name"],
                    "mobile": m.get("mobile") or "",
                    "job_number": m.get("job_number") or "",
                    "dept_id_list": m["departments"],
                    "active": True,
                    "admin": False,
                    "boss": False,
                    "leader": False,
                }
                for m in page
            ],
        }
        if has_more:
            result["next_cursor"] = cursor + size
        return JSONResponse({"errcode": 0, "errmsg": "ok", "result": result})

    async def _dingtalk_v1(
        self, request: Request
    ) -> tuple[dict[str, Any] | None, JSONResponse | None]:
        self._record_call("dingtalk", request)
        if not self._token_ok("dingtalk", request.headers.get("x-acs-dingtalk-access-token")):
            return None, JSONResponse(
                {"code": "InvalidAuthentication", "message": "不合法的access_token"},
                status_code=401,
            )
        if self._rate_limited("dingtalk"):
            return None, JSONResponse(
                {"code": "Forbidden.AccessDenied.QpsLimitForApi", "message": "QPS limit"},
                status_code=403,
            )
        try:
            return json.loads(await request.body()), None
        except ValueError:
            return None, JSONResponse(
                {"code": "param.empty", "message": "body is not JSON"}, status_code=400
            )

    @staticmethod
    def _param_map_ok(data: Any) -> bool:
        return (
            isinstance(data, dict)
            and isinstance(data.get("cardParamMap"), dict)
            and all(isinstance(v, str) for v in data["cardParamMap"].values())
        )

    def _deliver_results(self, userid: str) -> list[dict[str, Any]]:
        """Per space, as createAndDeliver / deliver answer (result.deliverResults[]: spaceType,
        spaceId, success, errorMsg — the Alibaba Cloud DingTalk SDK's
        CreateAndDeliverResponseBodyResultDeliverResults). A user outside the robot's
        visible range is not reached: success false. The exact errorMsg DingTalk writes
        then is not documented; the text here is the simulator's own."""
        if userid in self.state.dingtalk_unreachable:
            return [
                {
                    "spaceType": "IM_ROBOT",
                    "spaceId": userid,
                    "success": False,
                    "errorMsg": "user not in the robot's visible range",
                }
            ]
        return [{"spaceType": "IM_ROBOT", "spaceId": userid, "success": True}]

    async def dingtalk_card_create(self, request: Request) -> JSONResponse:
        """创建并投放卡片, POST /v1.0/card/instances/createAndDeliver
        (https://open.dingtalk.com/document/orgapp/create-and-deliver-cards): cardTemplateId,
        outTrackId, openSpaceId `dtv1.card//IM_ROBOT.<userId>` with imRobotOpenDeliverModel,
        callbackType HTTP | STREAM, callbackRouteKey for HTTP, cardParamMap of strings.

        Not confirmed by any documentation, and so not relied on by the code: the error
        codes for a missing field (`param.<name>Empty` here) and what DingTalk answers for
        an outTrackId used before (here a plain 400 with a code the code does not read)."""
        body, error = await self._dingtalk_v1(request)
        if error:
            return error
        assert body is not None
        for name in ("cardTemplateId", "outTrackId", "openSpaceId"):
            if not body.get(name):
                return JSONResponse(
                    {"code": f"param.{name}Empty", "message": name}, status_code=400
                )
        if not self._param_map_ok(body.get("cardData")):
            return JSONResponse(
                {"code": "param.invalid", "message": "cardParamMap must map to strings"},
                status_code=400,
            )
        if body.get("callbackType") not in {"HTTP", "STREAM"}:
            return JSONResponse(
                {"code": "param.invalid", "message": "callbackType"}, status_code=400
            )
        space = body["openSpaceId"]
        if (
            not space.startswith("dtv1.card//IM_ROBOT.")
            or (body.get("imRobotOpenDeliverModel") or {}).get("spaceType") != "IM_ROBOT"
        ):
            return JSONResponse(
                {"code": "param.invalid", "message": "openSpaceId"}, status_code=400
            )
        if body["outTrackId"] in self.state.cards:
            return JSONResponse(
                {"code": "sim.outTrackIdUsed", "message": "outTrackId already used"},
                status_code=400,
            )
        userid = space.split("IM_ROBOT.", 1)[1]
        results = self._deliver_results(userid)
        self.state.cards[body["outTrackId"]] = {
            "template_id": body["cardTemplateId"],
            "userid": userid,
            "callback_type": body["callbackType"],
            "route_key": body.get("callbackRouteKey"),
            "data": dict(body["cardData"]["cardParamMap"]),
            "private": {
                uid: dict(v["cardParamMap"]) for uid, v in (body.get("privateData") or {}).items()
            },
            "updates": [],
            "delivered_to": [r["spaceId"] for r in results if r["success"]],
        }
        if results[0]["success"]:
            self.state.messages.append(
                {"platform": "dingtalk", "kind": "card", "to": [userid], "body": body}
            )
        return JSONResponse(
            {
                "success": True,
                "result": {"outTrackId": body["outTrackId"], "deliverResults": results},
            }
        )

    async def dingtalk_card_deliver(self, request: Request) -> JSONResponse:
        """投放卡片, POST /v1.0/card/instances/deliver
        (https://open.dingtalk.com/document/orgapp/delivery-card-interface): an existing
        outTrackId to an openSpaceId; the answer has the same deliverResults[]."""
        body, error = await self._dingtalk_v1(request)
        if error:
            return error
        assert body is not None
        card = self.state.cards.get(body.get("outTrackId", ""))
        space = str(body.get("openSpaceId") or "")
        if card is None or not space.startswith("dtv1.card//IM_ROBOT."):
            return JSONResponse(
                {"code": "param.invalid", "message": "card / space"}, status_code=400
            )
        userid = space.split("IM_ROBOT.", 1)[1]
        results = self._deliver_results(userid)
        if results[0]["success"] and userid not in card["delivered_to"]:
            card["delivered_to"].append(userid)
            self.state.messages.append(
                {"platform": "dingtalk", "kind": "card", "to": [userid], "body": body}
            )
        return JSONResponse({"success": True, "result": {"deliverResults": results}})

    async def dingtalk_card_register(self, request: Request) -> JSONResponse:
        """注册卡片回调地址, POST /v1.0/card/callbacks/register
        (https://open.dingtalk.com/document/orgapp/register-card-callback-address, and
        事件回调 › 注册回调地址): apiSecret, callbackUrl, callbackRouteKey, forceUpdate.
        "第一次调用不存在则插入，存在则结果返回上次注册信息"; forceUpdate=true overwrites.
        The answer's shape {success, result: {callbackUrl, apiSecret}} follows the SDKs'
        RegisterCallbackResponseBody; the docs show no full example."""
        body, error = await self._dingtalk_v1(request)
        if error:
            return error
        assert body is not None
        key, url, secret = (
            body.get("callbackRouteKey"),
            body.get("callbackUrl"),
            body.get("apiSecret"),
        )
        if not key or not url:
            return JSONResponse(
                {"code": "param.invalid", "message": "callbackRouteKey / callbackUrl"},
                status_code=400,
            )
        existing = self.state.card_routes.get(key)
        if existing is None or body.get("forceUpdate") is True:
            self.state.card_routes[key] = {"callbackUrl": url, "apiSecret": secret or ""}
        return JSONResponse({"success": True, "result": dict(self.state.card_routes[key])})

    async def dingtalk_card_update(self, request: Request) -> JSONResponse:
        """更新卡片, PUT /v1.0/card/instances
        (https://open.dingtalk.com/document/orgapp/interactive-card-update-interface):
        outTrackId, cardData.cardParamMap (strings), cardUpdateOptions.updateCardDataByKey.
        The error code for an unknown outTrackId is not documented (`param.cardNotExist`
        here is the simulator's own)."""
        body, error = await self._dingtalk_v1(request)
        if error:
            return error
        assert body is not None
        card = self.state.cards.get(body.get("outTrackId", ""))
        if card is None:
            return JSONResponse(
                {"code": "param.cardNotExist", "message": "card not found"}, status_code=400
            )
        if not self._param_map_ok(body.get("cardData")):
            return JSONResponse(
                {
                    "code": "param.cardPublicDataEmpty",
                    "message": "cardParamMap must map to strings",
                },
                status_code=400,
            )
        card["data"].update(body["cardData"]["cardParamMap"])
        for uid, value in (body.get("privateData") or {}).items():
            card["private"].setdefault(uid, {}).update(value["cardParamMap"])
        card["updates"].append(body)
        return JSONResponse({"success": True, "result": True})

    # -- WeCom ---------------------------------------------------------------------
    async def _wechat_style(
        self, platform: str, request: Request, *, with_body: bool = True
    ) -> tuple[dict[str, Any] | None, JSONResponse | None]:
        self._record_call(platform, request)
        if not self._token_ok(platform, request.query_params.get("access_token")):
            return None, JSONResponse(
                {
                    "errcode": 40014 if platform == "wecom" else 40001,
                    "errmsg": "invalid access_token",
                }
            )
        if self._rate_limited(platform):
            return None, JSONResponse({"errcode": 45009, "errmsg": "api freq out of limit"})
        if not with_body:
            return {}, None
        try:
            return json.loads(await request.body()), None
        except ValueError:
            return None, JSONResponse({"errcode": 47001, "errmsg": "data format error"})

    async def wecom_gettoken(self, request: Request) -> JSONResponse:
        """获取access_token (https://developer.work.weixin.qq.com/document/path/91039); from an
        address outside the app's 企业可信IP WeCom answers 60020 (全局错误码 "不安全的访问IP").
        Whether gettoken itself or only the later calls answer 60020 is not stated in the
        docs; the simulator refuses gettoken."""
        q = request.query_params
        if self.state.wecom_ip_blocked:
            return JSONResponse({"errcode": 60020, "errmsg": "not allow to access from your ip"})
        if q.get("corpid") != WECOM["corp_id"] or q.get("corpsecret") != WECOM["secret"]:
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential"})
        return JSONResponse({"errcode": 0, "errmsg": "ok", **self._issue("wecom")})

    # WeCom 发送应用消息 (POST cgi-bin/message/send; developer.work.weixin.qq.com/document/path/90236):
    # errcode 0 even when some receivers are unknown, listed in invaliduser ("a|b"). The
    # per-member limit (30 a minute, 1,000 an hour) drops the excess with errcode 0 (the
    # 频率限制 page); a template card's task_id must be unique (the code a repeat answers is
    # not documented: the simulator's is its own).
    async def wecom_send(self, request: Request) -> JSONResponse:
        body, error = await self._wechat_style("wecom", request)
        if error:
            return error
        assert body is not None
        msgtype = body.get("msgtype")
        if (
            str(body.get("agentid")) != WECOM["agent_id"]
            or not body.get("touser")
            or not isinstance(body.get(msgtype), dict)
        ):
            return JSONResponse(
                {"errcode": 40008, "errmsg": "invalid message type / agentid / touser"}
            )
        answer: dict[str, Any] = {
            "errcode": 0,
            "errmsg": "ok",
            "invaliduser": "",
            "msgid": secrets.token_hex(8),
        }
        users = body["touser"].split("|")
        # 发送应用消息 (https://developer.work.weixin.qq.com/document/path/90236): unknown
        # members come back in `invaliduser` ("|"-separated) with errcode 0.
        unknown = [u for u in users if u in self.state.wecom_unknown_users]
        users = [u for u in users if u not in unknown]
        answer["invaliduser"] = "|".join(unknown)
        if msgtype == "template_card":
            card = body["template_card"]
            # 模板卡片消息 task_id: "同一个应用任务id不能重复，只能由数字、字母和“_-@”组成，最长支持128字节".
            # The errcode for a repeated task_id is not documented; the simulator's 40058
            # is its own, and the code relies on no code for it.
            task_id = str(card.get("task_id") or "")
            if (
                task_id in self.state.wecom_task_ids
                or not all(ch.isascii() and (ch.isalnum() or ch in "_-@") for ch in task_id)
                or len(task_id.encode()) > 128
            ):
                return JSONResponse({"errcode": 40058, "errmsg": "task_id repeated or invalid"})
            if task_id:
                self.state.wecom_task_ids.add(task_id)
            if card.get("card_type") == "button_interaction":
                if (
                    not card.get("task_id")
                    or not card.get("button_list")
                    or not (card.get("main_title") or {}).get("title")
                ):
                    return JSONResponse(
                        {
                            "errcode": 40058,
                            "errmsg": "template_card: task_id, main_title.title and button_list are required",
                        }
                    )
                for button in card["button_list"]:
                    url_button = button.get("type") == 1
                    if (
                        not button.get("text")
                        or (url_button and not button.get("url"))
                        or (not url_button and not button.get("key"))
                    ):
                        return JSONResponse(
                            {
                                "errcode": 40058,
                                "errmsg": "button_list: text, and key (callback) or url (type 1), required",
                            }
                        )
            code = secrets.token_hex(16)
            answer["response_code"] = code
            self.state.wecom_cards[code] = {
                "users": users,
                "card": card,
                "task_id": card.get("task_id"),
                "used": False,
                "updates": [],
            }
        elif msgtype in {"text", "markdown"} and "content" not in body[msgtype]:
            return JSONResponse({"errcode": 41009, "errmsg": "missing content"})
        # "每应用对同一个成员不可超过30次/分，1000次/小时，超过部分会被丢弃不下发": errcode 0 all the same
        now = time.time() + self.state.clock_offset
        delivered = []
        for user in users:
            recent = [at for u, at in self.state.wecom_sends if u == user and at > now - 3600]
            if len([at for at in recent if at > now - 60]) >= 30 or len(recent) >= 1000:
                self.state.wecom_dropped.append({"to": user, "body": body})
                continue
            self.state.wecom_sends.append((user, now))
            delivered.append(user)
        users = delivered
        if not users:
            return JSONResponse(answer)
        self.state.messages.append(
            {
                "platform": "wecom",
                "kind": msgtype,
                "to": users,
                "body": body,
                "response_code": answer.get("response_code"),
            }
        )
        return JSONResponse(answer)

    # WeCom 更新模版卡片消息 (POST cgi-bin/message/update_template_card with the response_code
    # from the tap's callback; developer.work.weixin.qq.com/document/path/94888): the code
    # is valid for 72 hours and once. Which error code an unknown or reused code answers could
    # not be confirmed from the page: the simulator answers 40135 (its own choice), and the
    # 72-hour expiry is not simulated.
    async def wecom_update_card(self, request: Request) -> JSONResponse:
        body, error = await self._wechat_style("wecom", request)
        if error:
            return error
        assert body is not None
        card = self.state.wecom_cards.get(str(body.get("response_code")))
        if card is None or card["used"]:
            return JSONResponse(
                {"errcode": 40135, "errmsg": "invalid response_code (unknown or already used)"}
            )
        if str(body.get("agentid")) != WECOM["agent_id"] or not isinstance(
            body.get("userids"), list
        ):
            return JSONResponse({"errcode": 40058, "errmsg": "agentid / userids"})
        if not (
            isinstance(body.get("button"), dict) and body["button"].get("replace_name")
        ) and not isinstance(body.get("template_card"), dict):
            return JSONResponse(
                {"errcode": 40058, "errmsg": "button.replace_name or template_card required"}
            )
        card["used"] = True  # a response_code updates a card once
        card["updates"].append(body)
        return JSONResponse({"errcode": 0, "errmsg": "ok", "invaliduser": []})

    # WeCom 获取访问用户身份 (GET cgi-bin/auth/getuserinfo?code=, the snsapi_base OAuth code;
    # developer.work.weixin.qq.com/document/path/91023): userid of a corp member.
    async def wecom_getuserinfo(self, request: Request) -> JSONResponse:
        _, error = await self._wechat_style("wecom", request, with_body=False)
        if error:
            return error
        userid = self.state.auth_codes.pop(("wecom", request.query_params.get("code", "")), None)
        if userid is None:
            return JSONResponse({"errcode": 40029, "errmsg": "invalid code"})
        return JSONResponse({"errcode": 0, "errmsg": "ok", "userid": userid})

    # WeCom 手机号获取userid (POST cgi-bin/user/getuserid; developer.work.weixin.qq.com/document/path/95402).
    async def wecom_getuserid(self, request: Request) -> JSONResponse:
        body, error = await self._wechat_style("wecom", request)
        if error:
            return error
        assert body is not None
        userid = self.state.mobiles.get(("wecom", str(body.get("mobile"))))
        if userid is None:
            return JSONResponse({"errcode": 46004, "errmsg": "user no exist"})
        return JSONResponse({"errcode": 0, "errmsg": "ok", "userid": userid})

    # Directory, from WeCom's "获取部门列表" (GET cgi-bin/department/list, every department
    # the app may see; developer.work.weixin.qq.com/document/path/90208) and "获取部门成员
    # 详情" (GET cgi-bin/user/list?department_id=, path/90201: status 1 active, 2 disabled,
    # 4 not activated, 5 left; extended attributes in extattr.attrs).
    async def wecom_department_list(self, request: Request) -> JSONResponse:
        _, error = await self._wechat_style("wecom", request, with_body=False)
        if error:
            return error
        departments, _ = self.state.directories.get("wecom", ([], []))
        listed = [{"id": 1, "name": "医院", "parentid": 0, "order": 1}] + [
            {"id": d["id"], "name": d["name"], "parentid": d.get("parent_id", 1), "order": 1}
            for d in departments
        ]
        return JSONResponse({"errcode": 0, "errmsg": "ok", "department": listed})

    # WeCom 获取部门成员详情 (GET cgi-bin/user/list?department_id=; path/90201, see above).
    async def wecom_user_list(self, request: Request) -> JSONResponse:
        _, error = await self._wechat_style("wecom", request, with_body=False)
        if error:
            return error
        raw = request.query_params.get("department_id", "")
        departments, members = self.state.directories.get("wecom", ([], []))
        if not raw.isdigit() or int(raw) not in {1} | {d["id"] for d in departments}:
            return JSONResponse({"errcode": 60123, "errmsg": "invalid party id"})
        userlist = []
        for m in members:
            if int(raw) not in m["departments"]:
                continue
            user: dict[str, Any] = {
                "userid": m["userid"],
                "name": m["name"],
                "department": m["departments"],
                "status": m.get("status", 1),
                "extattr": {
                    "attrs": [{"type": 0, "name": "工号", "text": {"value": m["job_number"]}}]
                    if m.get("job_number")
                    else []
                },
            }
            if m.get("mobile"):
                user["mobile"] = m["mobile"]
            userlist.append(user)
        return JSONResponse({"errcode": 0, "errmsg": "ok", "userlist": userlist})

    # -- Official Account ----------------------------------------------------------
    async def oa_token(self, request: Request) -> JSONResponse:
        """获取 Access token (https://developers.weixin.qq.com/doc/offiaccount/Basic_Information/Get_access_token.html);
        from an address not in the IP whitelist it answers 40164 (全局返回码: "调用接口的IP地址不在白名单中")."""
        q = request.query_params
        if self.state.oa_ip_blocked:
            return JSONResponse(
                {
                    "errcode": 40164,
                    "errmsg": "invalid ip 203.0.113.7, not in whitelist rid: sim",
                }
            )
        if (
            q.get("grant_type") != "client_credential"
            or q.get("appid") != OA["app_id"]
            or q.get("secret") != OA["secret"]
        ):
            return JSONResponse({"errcode": 40013, "errmsg": "invalid appid"})
        return JSONResponse(self._issue("wechat_oa"))

    async def oa_template_send(self, request: Request) -> JSONResponse:
        """发送模板消息, POST /cgi-bin/message/template/send
        (https://developers.weixin.qq.com/doc/offiaccount/Message_Management/Template_Message_Interface.html):
        touser, template_id, data {key: {value}}, optional url and client_msg_id (a repeat
        with the same client_msg_id is not sent again). Since 2023-05-04 only the
        template's own keys show: `first` and `remark` are dropped, and each value is cut
        to its type's length (thing: 20 characters; 《关于规范公众号模板消息的再次公告》). The
        simulator records `shown`, what the patient sees, beside what was sent. Errors:
        40037 template_id invalid, 47003 an argument invalid, 45009 daily quota reached."""
        body, error = await self._wechat_style("wechat_oa", request)
        if error:
            return error
        assert body is not None
        if self.state.oa_quota_exhausted:
            return JSONResponse({"errcode": 45009, "errmsg": "reach max api daily quota limit"})
        data = body.get("data")
        if (
            not body.get("touser")
            or not body.get("template_id")
            or not isinstance(data, dict)
            or not all(isinstance(v, dict) and "value" in v for v in data.values())
        ):
            return JSONResponse({"errcode": 47001, "errmsg": "data format error"})
        keys = None
        if self.state.oa_templates is not None:
            keys = self.state.oa_templates.get(body["template_id"])
            if keys is None:
                return JSONResponse({"errcode": 40037, "errmsg": "invalid template_id"})
        client_msg_id = body.get("client_msg_id")
        for sent in self.state.messages:
            if client_msg_id and sent.get("client_msg_id") == client_msg_id:
                return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": sent["msgid"]})
        shown = {
            key: _cut(key, str(value["value"]))
            for key, value in data.items()
            if key not in ("first", "remark") and (keys is None or key in keys)
        }
        msgid = secrets.randbelow(10**12)
        self.state.messages.append(
            {
                "platform": "wechat_oa",
                "kind": "template",
                "to": [body["touser"]],
                "body": body,
                "msgid": msgid,
                "client_msg_id": client_msg_id,
                "shown": shown,
            }
        )
        return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    # Official Account 客服消息 (POST cgi-bin/message/custom/send; developers.weixin.qq.com
    # /doc/offiaccount/Message_Management/Service_Center_messages.html). The page's 48-hour
    # rule (only to a user who wrote to the account lately) is not simulated.
    async def oa_custom_send(self, request: Request) -> JSONResponse:
        body, error = await self._wechat_style("wechat_oa", request)
        if error:
            return error
        assert body is not None
        if (
            not body.get("touser")
            or body.get("msgtype") != "text"
            or "content" not in (body.get("text") or {})
        ):
            return JSONResponse({"errcode": 47001, "errmsg": "data format error"})
        self.state.messages.append(
            {"platform": "wechat_oa", "kind": "custom.text", "to": [body["touser"]], "body": body}
        )
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    # Official Account 创建自定义菜单 (POST cgi-bin/menu/create; developers.weixin.qq.com
    # /doc/offiaccount/Custom_Menus/Creating_Custom-Defined_Menu.html).
    async def oa_menu_create(self, request: Request) -> JSONResponse:
        body, error = await self._wechat_style("wechat_oa", request)
        if error:
            return error
        assert body is not None
        buttons = body.get("button")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            return JSONResponse({"errcode": 40016, "errmsg": "invalid button size"})
        self.state.menus.append(buttons)
        return JSONResponse({"errcode": 0, "errmsg": "ok"})

    async def oa_authorize(self, request: Request) -> Response:
        """网页授权 第一步 (https://developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html):
        `open.weixin.qq.com/connect/oauth2/authorize?appid&redirect_uri&response_type=code
        &scope&state#wechat_redirect`. "重定向后会带上state参数，开发者可以填写a-zA-Z0-9的参数值，
        最多128字节"; redirect_uri's domain must be the account's 网页授权域名; with
        snsapi_base the user is not asked and the browser goes to
        `redirect_uri?code=CODE&state=STATE` (the code: 5 minutes, one exchange).
        What WeChat shows for a refused request is an error page whose exact text and
        status are not documented; here a 400 with the reason."""
        from urllib.parse import urlencode, urlsplit

        q = request.query_params
        redirect_uri, state = q.get("redirect_uri", ""), q.get("state", "")
        if q.get("appid") == WECOM["corp_id"]:
            return self.wecom_authorize(request)
        problems = []
        if q.get("appid") != OA["app_id"]:
            problems.append("appid")
        if q.get("response_type") != "code" or q.get("scope") not in {
            "snsapi_base",
            "snsapi_userinfo",
        }:
            problems.append("response_type / scope")
        if len(state.encode()) > 128 or (state and not state.isascii()) or not state.isalnum():
            problems.append("state (a-zA-Z0-9, at most 128 bytes)")
        if not redirect_uri or urlsplit(redirect_uri).hostname != self.state.oa_oauth_domain:
            problems.append("redirect_uri (not on the 网页授权域名)")
        if self.state.oa_wechat_user is None:
            problems.append("no WeChat user in this browser")
        if problems:
            return PlainTextResponse("授权参数错误: " + ", ".join(problems), status_code=400)
        code = self.auth_code("wechat_oa", self.state.oa_wechat_user or "")
        joiner = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(
            f"{redirect_uri}{joiner}{urlencode({'code': code, 'state': state})}", status_code=302
        )

    def wecom_authorize(self, request: Request) -> Response:
        """企业微信 构造网页授权链接 (https://developer.work.weixin.qq.com/document/path/91022):
        the same host, `appid=<CorpID>`, `agentid` required for snsapi_base inside an app,
        state "a-zA-Z0-9的参数值，长度不可超过128个字节", redirect_uri on the app's 可信域名;
        back to `redirect_uri?code=CODE&state=STATE`, the code for /cgi-bin/auth/getuserinfo
        (5 minutes, once)."""
        from urllib.parse import urlencode, urlsplit

        q = request.query_params
        redirect_uri, state = q.get("redirect_uri", ""), q.get("state", "")
        problems = []
        if q.get("agentid") != WECOM["agent_id"] or q.get("scope") != "snsapi_base":
            problems.append("agentid / scope")
        if q.get("response_type") != "code":
            problems.append("response_type")
        if len(state.encode()) > 128 or (state and not (state.isascii() and state.isalnum())):
            problems.append("state")
        if not redirect_uri or urlsplit(redirect_uri).hostname != self.state.wecom_trusted_domain:
            problems.append("redirect_uri (not on the 可信域名)")
        if self.state.wecom_browser_user is None:
            problems.append("no WeCom member in this browser")
        if problems:
            return PlainTextResponse("授权参数错误: " + ", ".join(problems), status_code=400)
        code = self.auth_code("wecom", self.state.wecom_browser_user or "")
        joiner = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(
            f"{redirect_uri}{joiner}{urlencode({'code': code, 'state': state})}", status_code=302
        )

    # Official Account 网页授权: code for access_token and openid (GET sns/oauth2/access_token;
    # developers.weixin.qq.com/doc/offiaccount/OA_Web_Apps/Wechat_webpage_authorization.html):
    # a code is used once and expires after 5 minutes; an unknown one answers 40029.
    async def oa_oauth(self, request: Request) -> JSONResponse:
        q = request.query_params
        self._record_call("wechat_oa", request)
        if (
            q.get("appid") != OA["app_id"]
            or q.get("secret") != OA["secret"]
            or q.get("grant_type") != "authorization_code"
        ):
            return JSONResponse({"errcode": 40125, "errmsg": "invalid appsecret"})
        openid = self.state.auth_codes.pop(("wechat_oa", q.get("code", "")), None)
        if openid is None:
            return JSONResponse({"errcode": 40029, "errmsg": "invalid code"})
        return JSONResponse(
            {
                "access_token": secrets.token_hex(16),
                "expires_in": 7200,
                "refresh_token": secrets.token_hex(16),
                "openid": openid,
                "scope": "snsapi_base",
            }
        )


# -- running it ---------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SimulatorServer:
    """uvicorn in a thread with its own event loop."""

    def __init__(self, simulator: PlatformSimulator) -> None:
        self.simulator = simulator
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                simulator.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("platform simulator did not start")
            time.sleep(0.02)
        self.simulator.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


@pytest.fixture(scope="session")
def platform_sim_server() -> Iterator[PlatformSimulator]:
    simulator = PlatformSimulator()
    server = SimulatorServer(simulator)
    server.start()
    yield simulator
    server.stop()


@pytest.fixture
def platform_sim(platform_sim_server: PlatformSimulator) -> PlatformSimulator:
    """The simulator with a fresh state for this test."""
    platform_sim_server.reset()
    return platform_sim_server


def simulated_settings(settings: Any, sim: PlatformSimulator, **overrides: Any) -> Any:
    """`settings` with every platform's credentials set and its API pointed at `sim`."""
    values = {
        "dingtalk_app_key": DINGTALK["app_key"],
        "dingtalk_app_secret": DINGTALK["app_secret"],
        "dingtalk_agent_id": DINGTALK["agent_id"],
        "dingtalk_corp_id": DINGTALK["corp_id"],
        "dingtalk_callback_token": CALLBACK_TOKEN,
        "dingtalk_callback_aes_key": DINGTALK_AES_KEY,
        "dingtalk_api_base": sim.url,
        "dingtalk_card_template_id": "sim-approval-card.schema",
        # HTTP mode unless a test asks for Stream mode (the product's default)
        "dingtalk_use_stream": False,
        "dingtalk_card_callback_secret": CARD_API_SECRET,
        "wecom_corp_id": WECOM["corp_id"],
        "wecom_secret": WECOM["secret"],
        "wecom_agent_id": WECOM["agent_id"],
        "wecom_token": CALLBACK_TOKEN,
        "wecom_aes_key": WECOM_AES_KEY,
        "wecom_api_base": sim.url,
        "wecom_oauth_base": sim.url,
        "wechat_oa_app_id": OA["app_id"],
        "wechat_oa_secret": OA["secret"],
        "wechat_oa_token": CALLBACK_TOKEN,
        "wechat_oa_aes_key": OA_AES_KEY,
        "wechat_oa_api_base": sim.url,
        "wechat_oa_oauth_base": sim.url,
        "wechat_oa_template_ids": {
            "booking_confirmed": "tmpl-booking-confirmed",
            "booking_reminder": "tmpl-booking-reminder",
            "booking_changed": "tmpl-booking-changed",
            "followup_due": "tmpl-followup-due",
        },
    }
    values.update(overrides)
    return settings.model_copy(update=values)


__all__ = [
    "PlatformSimulator",
    "dingtalk_callback",
    "dingtalk_card_signature",
    "dingtalk_card_tap",
    "oa_callback",
    "platform_decrypt",
    "platform_encrypt",
    "platform_sim",
    "platform_sim_server",
    "simulated_settings",
    "wecom_callback",
    "wecom_echo",
]


if (
    __name__ == "__main__"
):  # `python -m tests.simulators.platforms PORT`: a standalone simulator (bench)
    import sys

    uvicorn.run(
        PlatformSimulator().app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
    )


def simulated_services(services: Any, sim: PlatformSimulator, **overrides: Any) -> Any:
    """The same database, hashing and keys as `services`, with the platforms pointed at `sim`."""
    from api.services import Services

    return Services(
        settings=simulated_settings(services.settings, sim, **overrides),
        db=services.db,
        hashing=services.hashing,
        cipher=services.cipher,
    )
