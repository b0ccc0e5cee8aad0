"""DingTalk: approval task cards (互动卡片), their HTTP callback, and in-app login (免登).

The card template (built once in DingTalk's card builder, its id in
BEDSIDE_DINGTALK_CARD_TEMPLATE_ID) binds these variables, all strings:
`title patient procedure grade emergency precheck deadline` (the facts), `state`
(pending | approved | rejected | returned | closed), `outcome` (已同意 · 王主任 · 10:42),
`note`, `actionable` ("true" shows the buttons), `detail_url`. Buttons: 同意 and 退回 are
回传请求 actions with ids `approve` and `return`; 详情 opens `detail_url` in DingTalk.

Card taps arrive one of two ways (互动卡片 事件回调,
https://open.dingtalk.com/document/development/event-callback-card):

- Stream mode (the default, BEDSIDE_DINGTALK_USE_STREAM=true): cards are created with
  `callbackType=STREAM` and taps come over the outbound `bedside dingtalk-stream`
  connection, topic `/v1.0/card/instances/callback` (`bots/dingtalk_stream.py`).
- HTTP mode: cards are created with `callbackType=HTTP` and the `callbackRouteKey`
  registered by `bedside dingtalk register-card-callback` (注册卡片回调地址); DingTalk POSTs
  each tap as plain JSON to the registered URL, `POST /bots/dingtalk/card-callback`, with
  `x-ddpaas-signature-timestamp` (ms) and `x-ddpaas-signature` = base64(HMAC-SHA256(
  apiSecret, timestamp)). `card_callback` checks both (`verify_card_signature`).

Either way the plaintext is `{type: actionCallback, outTrackId, corpId, userId, content}`
with `content.cardPrivateData.params` (what the template's 回传请求 sets: `action`) and
`actionIds`. The tap is stored in the inbox (`bots/inbox.py`) and answered at once; the
decision runs right after, and the card is updated through the update API afterwards
(DingTalk asks for no update call inside the callback and an answer within 2 seconds).

`/bots/dingtalk/callback` is the event-subscription (事件订阅) URL: signed and encrypted
`{"encrypt"}` bodies, answered with the encrypted "success".
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from typing import Any

from dingtalk.core.exceptions import InvalidCorpIdOrSuiteKeyException, InvalidSignatureException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from api.audit import canonical_json
from api.auth import issue_token
from api.models.people import User
from api.services import Services
from bots import cards, identity, inbox
from bots.guard import CallbackRefused, check_fresh, claim_nonce, release_nonce
from integrations.platforms import PlatformError, get_platforms

log = logging.getLogger("bedside.bots.dingtalk")
PLATFORM = "dingtalk"
CARD_NONCE_SPACE = "dingtalk-card"  # signed card-callback headers already seen


# -- card setup (the card itself: bots.dingtalk_cards) ------------------------------------
def card_setup_message(services: Services) -> str | None:
    """Why approval cards will not go out on DingTalk, or None (ready, or DingTalk unused)."""
    client = get_platforms(services).dingtalk
    if not client.configured:
        return None
    problems = client.card_setup_problems()
    if not problems:
        return None
    return (
        "钉钉审批卡片未启用：缺少 / DingTalk approval cards are off until these are set: "
        + ", ".join(problems)
    )


def warn_card_setup(services: Services) -> None:
    message = card_setup_message(services)
    if message:
        log.error(message)


async def register_card_callback(
    services: Services, *, callback_url: str | None = None, force: bool = False
) -> tuple[bool, dict[str, Any]]:
    """Register the card callback URL for the route key (HTTP mode).

    Returns (registered as asked, DingTalk's record). Without `force` an existing
    registration for another URL is left as it is and returned for comparison."""
    settings = services.settings
    secret = settings.dingtalk_card_callback_secret
    route_key = settings.dingtalk_card_callback_route_key
    if not (secret and route_key):
        raise PlatformError(
            PLATFORM,
            "NOT_CONFIGURED",
            "BEDSIDE_DINGTALK_CARD_CALLBACK_SECRET / _CARD_CALLBACK_ROUTE_KEY are required",
        )
    url = callback_url or f"{settings.public_url.rstrip('/')}/bots/dingtalk/card-callback"
    client = get_platforms(services).dingtalk
    record = await client.register_card_callback(
        route_key=route_key, callback_url=url, api_secret=secret, force_update=force
    )
    current = str(record.get("callbackUrl") or url)
    return current == url, {**record, "callbackUrl": current, "callbackRouteKey": route_key}


# -- a callback's plaintext --------------------------------------------------------------
def callback_id_of(payload: dict[str, Any]) -> str:
    """DingTalk's id for the delivery when it sends one, else a digest of the callback
    itself: a redelivery carries the same content, so it maps to the same key."""
    for name in ("callbackId", "messageId", "eventId", "EventId"):
        if payload.get(name):
            return f"dt:{payload[name]}"[:100]
    return "dt:" + hashlib.sha1(canonical_json(payload).encode()).hexdigest()


def tap_fields(payload: dict[str, Any]) -> dict[str, Any] | None:
    """What the inbox keeps of a card callback, or None if it cannot be read."""
    try:
        content = payload.get("content")
        content = json.loads(content) if isinstance(content, str) else (content or {})
        private = content.get("cardPrivateData") or {}
        params = private.get("params") or {}
        # `params` is what the 回传请求 action sets (the official tutorial's way); the
        # component's id in `actionIds` only when the template sets no parameter.
        action = params.get("action") or (private.get("actionIds") or [""])[0] or ""
    except (ValueError, AttributeError, IndexError):
        return None
    fields = {
        "card_key": str(payload.get("outTrackId", "")),
        "external_id": str(payload.get("userId", "")),
        "action": str(action),
        "comment": str(params["comment"]) if params.get("comment") else None,
    }
    if any("\x00" in (v or "") for v in fields.values()):
        return None  # no platform sends NUL; the database cannot store it either
    return fields


async def handle_card_callback(
    services: Services, payload: dict[str, Any], *, callback_id: str | None = None
) -> cards.TapResult:
    """A decrypted card callback, stored and decided at once (Stream mode)."""
    fields = tap_fields(payload)
    if fields is None:
        return cards.TapResult("invalid", "无法识别的卡片回调 / unreadable card callback")
    tap_id = await inbox.record(services, PLATFORM, callback_id or callback_id_of(payload), fields)
    if tap_id is None:
        return cards.TapResult("duplicate", "已收到 / already received")
    return await inbox.process(services, tap_id) or cards.TapResult(
        "duplicate", "已收到 / already received"
    )


async def after_tap(services: Services, result: cards.TapResult, external_id: str) -> None:
    """After the answer: send the card changes, or ask an unbound user to bind."""
    await cards.after_tap(services, PLATFORM, result, external_id)


async def callback(request: Request) -> Response:
    services: Services = request.app.state.services
    if request.method == "GET":
        return PlainTextResponse("Bedside DingTalk callback")
    client = get_platforms(services).dingtalk
    q = request.query_params
    signature = q.get("msg_signature") or q.get("signature") or ""
    timestamp = q.get("timestamp") or q.get("timeStamp") or ""
    nonce = q.get("nonce") or ""
    try:
        check_fresh(services, timestamp, millis=True)
        try:
            body = json.loads(await request.body())
            plaintext = client.callback_crypto().decrypt_message(body, signature, timestamp, nonce)
            payload = json.loads(plaintext)
        except (
            InvalidSignatureException,
            InvalidCorpIdOrSuiteKeyException,
            ValueError,
            KeyError,
            TypeError,
        ) as exc:
            raise CallbackRefused(f"bad signature or payload ({type(exc).__name__})") from None
        await claim_nonce(services, PLATFORM, timestamp, nonce)
    except CallbackRefused as refused:
        log.warning("DingTalk callback refused: %s", refused.reason)
        return PlainTextResponse("forbidden", status_code=403)

    fields = tap_fields(payload) if "outTrackId" in payload else None
    if fields is not None:
        try:
            tap_id = await inbox.record(services, PLATFORM, callback_id_of(payload), fields)
        except Exception:
            await release_nonce(
                services, PLATFORM, timestamp, nonce
            )  # let DingTalk's retry through
            raise
        if tap_id is not None:  # None: a redelivery of a tap already stored
            inbox.submit(services, tap_id)
    # check_url and other events need only the encrypted "success".
    answer = client.callback_crypto().encrypt_message("success", nonce=nonce, timestamp=timestamp)
    return JSONResponse(answer)


def card_signature(api_secret: str, timestamp: str) -> str:
    """calcSignature(apiSecret, timestamp) of DingTalk's card callbacks (事件回调 › 回调签名验证)."""
    digest = hmac.new(api_secret.encode(), timestamp.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_card_signature(services: Services, timestamp: str, signature: str) -> None:
    secret = services.settings.dingtalk_card_callback_secret
    if not secret:
        raise CallbackRefused("BEDSIDE_DINGTALK_CARD_CALLBACK_SECRET is not set")
    if not timestamp or not signature:
        raise CallbackRefused("missing x-ddpaas-signature headers")
    check_fresh(services, timestamp, millis=True)
    if not hmac.compare_digest(card_signature(secret, timestamp), signature):
        raise CallbackRefused("bad x-ddpaas-signature")


async def card_callback(request: Request) -> Response:
    """HTTP mode: a card tap POSTed by DingTalk to the URL registered for the route key."""
    services: Services = request.app.state.services
    timestamp = request.headers.get("x-ddpaas-signature-timestamp", "")
    signature = request.headers.get("x-ddpaas-signature", "")
    try:
        verify_card_signature(services, timestamp, signature)
        try:
            payload = json.loads(await request.body())
            fields = tap_fields(payload) if isinstance(payload, dict) else None
        except ValueError:
            fields = None
        if fields is None or not fields["card_key"]:
            raise CallbackRefused("unreadable card callback")
        callback_id = callback_id_of(payload)
        # The signature covers the timestamp only: signed headers seen before carry a
        # replay, refused unless they bring back the very tap already stored (a retry).
        try:
            await claim_nonce(services, CARD_NONCE_SPACE, timestamp, signature)
        except CallbackRefused:
            if await inbox.exists(services, PLATFORM, callback_id):
                return JSONResponse({})
            raise
    except CallbackRefused as refused:
        log.warning("DingTalk card callback refused: %s", refused.reason)
        return JSONResponse({"error": "forbidden"}, status_code=403)
    try:
        tap_id = await inbox.record(services, PLATFORM, callback_id, fields)
    except Exception:
        await release_nonce(services, CARD_NONCE_SPACE, timestamp, signature)
        raise
    if tap_id is not None:
        inbox.submit(services, tap_id)
    # An empty answer leaves the card as it is; the decided state follows by the update API.
    return JSONResponse({})


async def login(request: Request) -> Response:
    """免登: exchange DingTalk's in-app auth code for a Bedside token.

    An unbound DingTalk user gets a one-time binding link instead (never an error)."""
    services: Services = request.app.state.services
    try:
        code = str((await request.json())["code"])
    except (ValueError, KeyError, TypeError):
        return JSONResponse(
            {
                "error": {
                    "code": "VALIDATION",
                    "field": "code",
                    "message": "缺少 code / code is required",
                }
            },
            status_code=400,
        )
    return await exchange_login(services, PLATFORM, code)


async def exchange_login(services: Services, platform: str, code: str) -> Response:
    client = getattr(get_platforms(services), platform)
    try:
        external_id = await client.userid_for_auth_code(code)
    except PlatformError:
        return JSONResponse(
            {
                "error": {
                    "code": "UNAUTHENTICATED",
                    "message": "登录码无效或已过期 / the login code is invalid or expired",
                }
            },
            status_code=401,
        )
    async with services.db.transaction() as session:
        actor = await identity.actor_for(session, platform, external_id)
        if actor is None:
            link = await identity.create_binding_link(session, services, platform, external_id)
            return JSONResponse(
                {
                    "token": None,
                    "bindUrl": link,
                    "message": "请先绑定 Bedside 账号 / please bind your Bedside account",
                }
            )
        user = await session.get(User, actor.user_id)
        assert user is not None
        return JSONResponse(
            {"token": issue_token(services.settings, user), "username": user.username}
        )
