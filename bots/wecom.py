"""WeCom: approval task cards (template_card, button_interaction) and their callback.

Callback (`/bots/wecom/callback?msg_signature=&timestamp=&nonce=`):
- GET with `echostr`: URL verification — the signature over the echostr is checked and
  the decrypted echostr returned as plain text.
- POST: XML `<Encrypt>`; signature, freshness (seconds) and nonce are checked, then the
  plaintext is decrypted with wechatpy's WXBizMsgCrypt. wechatpy 1.8 does not know
  `template_card_event`, so its fields (EventKey, TaskId, ResponseCode, FromUserName) are
  read from the XML here. The answer is an empty body (no passive reply); the card is
  updated through `update_template_card` with the event's ResponseCode after the commit.

The tap's ResponseCode is also its id: WeCom redelivers an event with the same code.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import xmltodict
from starlette.background import BackgroundTasks
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from wechatpy.utils import to_text

from api.services import Services
from bots import cards, identity, inbox
from bots.guard import CallbackRefused, check_fresh, claim_nonce, release_nonce
from bots.wecom_cards import card_key_of
from integrations.platforms import get_platforms

log = logging.getLogger("bedside.bots.wecom")
PLATFORM = "wecom"


def read_event(plaintext: str) -> dict[str, Any]:
    return xmltodict.parse(to_text(plaintext))["xml"]


async def callback(request: Request) -> Response:
    services: Services = request.app.state.services
    client = get_platforms(services).wecom
    q = request.query_params
    signature, timestamp, nonce = (
        q.get("msg_signature", ""),
        q.get("timestamp", ""),
        q.get("nonce", ""),
    )
    try:
        check_fresh(services, timestamp)
        crypto = client.callback_crypto()
        if request.method == "GET":
            try:
                echo = crypto.check_signature(signature, timestamp, nonce, q.get("echostr", ""))
            except Exception as exc:  # noqa: BLE001 - any failure here is a refused handshake
                raise CallbackRefused(f"bad echostr ({type(exc).__name__})") from None
            return PlainTextResponse(to_text(echo))
        try:
            plaintext = crypto.decrypt_message(await request.body(), signature, timestamp, nonce)
            event = read_event(plaintext)
        except Exception as exc:  # noqa: BLE001 - a bad signature, key or body: all refused alike
            raise CallbackRefused(f"bad signature or payload ({type(exc).__name__})") from None
        await claim_nonce(services, PLATFORM, timestamp, nonce)
    except CallbackRefused as refused:
        log.warning("WeCom callback refused: %s", refused.reason)
        return PlainTextResponse("forbidden", status_code=403)

    tasks = BackgroundTasks()
    if event.get("MsgType") == "event" and event.get("Event") == "template_card_event":
        response_code = str(event.get("ResponseCode") or "")
        fields = {
            "card_key": card_key_of(str(event.get("TaskId", ""))),
            "external_id": str(event.get("FromUserName", "")),
            "action": str(event.get("EventKey", "")),
            "response_code": response_code or None,
        }
        try:
            tap_id = await inbox.record(
                services,
                PLATFORM,
                "wc:" + hashlib.sha1((response_code or plaintext).encode()).hexdigest(),
                fields,
            )
        except Exception:
            await release_nonce(services, PLATFORM, timestamp, nonce)
            raise
        if tap_id is not None:  # None: WeCom redelivered an event already stored
            inbox.submit(services, tap_id)
    elif event.get("MsgType") == "text" or event.get("Event") == "enter_agent":
        tasks.add_task(prompt_if_unbound, services, str(event.get("FromUserName", "")))
    return PlainTextResponse("", background=tasks)


async def prompt_if_unbound(services: Services, external_id: str) -> None:
    """A member who opens or writes to the app but is not bound gets the binding link."""
    async with services.db.transaction() as session:
        if not external_id or await identity.actor_for(session, PLATFORM, external_id) is not None:
            return
        link = await identity.create_binding_link(session, services, PLATFORM, external_id)
    await after_tap(
        services,
        cards.TapResult(
            "unbound", "请先绑定 Bedside 账号 / please bind your Bedside account", bind_link=link
        ),
        external_id,
    )


async def after_tap(services: Services, result: cards.TapResult, external_id: str) -> None:
    await cards.after_tap(services, PLATFORM, result, external_id)
