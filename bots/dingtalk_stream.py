"""DingTalk Stream mode: card taps over an outbound connection (no public callback URL).

`bedside dingtalk-stream` opens the connection with the `dingtalk-stream` package and
hands each card callback (topic `/v1.0/card/instances/callback`) to the same
`handle_card_callback` as the HTTP callback. The connection itself is DingTalk's: it is
authenticated by AppKey/AppSecret and carries no per-message signature, so there is no
timestamp/nonce check here; redeliveries carry the same `messageId`, which is the
decision's idempotency key. Cards are created with `callbackType=STREAM` unless
BEDSIDE_DINGTALK_USE_STREAM=false (HTTP mode). It refuses to start while the card setup is
incomplete (`card_setup_message`).
"""

from __future__ import annotations

import logging
from typing import Any

import dingtalk_stream
from dingtalk_stream import AckMessage

from api.services import Services
from bots.dingtalk import card_setup_message, handle_card_callback
from bots.sweep import sweep

log = logging.getLogger("bedside.bots.dingtalk_stream")


async def process_stream_callback(
    services: Services, data: dict[str, Any], message_id: str | None
) -> tuple[int, dict[str, Any]]:
    """One card callback from the stream: decide, then send card changes; (ack code, body)."""
    result = await handle_card_callback(
        services, data, callback_id=f"dts:{message_id}" if message_id else None
    )
    return AckMessage.STATUS_OK, {"outcome": result.outcome, "message": result.message}


class CardCallbackHandler(dingtalk_stream.CallbackHandler):
    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services

    async def process(self, message: dingtalk_stream.CallbackMessage) -> tuple[int, Any]:  # type: ignore[override]
        try:
            return await process_stream_callback(
                self.services, message.data, message.headers.message_id
            )
        except Exception:  # noqa: BLE001 - an error ack lets DingTalk redeliver
            log.exception("card callback from the stream failed")
            return AckMessage.STATUS_SYSTEM_EXCEPTION, "error"


async def run(services: Services) -> None:
    """Connect and serve until stopped (reconnects inside the package)."""
    settings = services.settings
    if not (settings.dingtalk_app_key and settings.dingtalk_app_secret):
        raise SystemExit("BEDSIDE_DINGTALK_APP_KEY / _APP_SECRET are required for Stream mode")
    problem = card_setup_message(services)
    if problem:
        raise SystemExit(problem)
    if not settings.dingtalk_use_stream:
        log.warning(
            "BEDSIDE_DINGTALK_USE_STREAM=false: cards call back over HTTP, this connection "
            "receives only taps on cards created in Stream mode"
        )
    client = dingtalk_stream.DingTalkStreamClient(
        dingtalk_stream.Credential(settings.dingtalk_app_key, settings.dingtalk_app_secret)
    )
    client.register_callback_handler(
        dingtalk_stream.CallbackHandler.TOPIC_CARD_CALLBACK, CardCallbackHandler(services)
    )
    await sweep(services)  # taps and cards waiting since the last run
    await client.start()
