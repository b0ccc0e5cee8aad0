"""HTTP hardening the app assembles: request body limit and CORS for the PWA's origin.

CSRF: the API authenticates only by the `Authorization: Bearer` header. No cookie is ever
read for authentication (a token in a cookie is ignored), so a cross-site form or image
request carries no credentials and cannot act for the user; CORS allows only the listed
origins and never credentials (cookies).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.settings import Settings

log = logging.getLogger("bedside.http")

# Uploads have their own (larger) limit, checked by the upload route itself.
UNLIMITED_PREFIXES = ("/attachments",)


class BodyTooLarge(Exception):
    pass


def _too_large_body(limit: int) -> bytes:
    message = (
        f"请求体超过 {limit // 1024} KB 上限 / request body exceeds the {limit // 1024} KB limit"
    )
    return json.dumps(
        {"errors": [{"message": message, "extensions": {"code": "PAYLOAD_TOO_LARGE"}}]},
        ensure_ascii=False,
    ).encode()


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` (413), by Content-Length or while streaming."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, exempt_prefixes: tuple[str, ...] = UNLIMITED_PREFIXES
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt_prefixes = exempt_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt_prefixes):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        try:
            declared = int(headers.get(b"content-length", b"0") or 0)
        except ValueError:
            declared = 0
        if declared > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = _too_large_body(self.max_bytes)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


NESTED_TOO_DEEP = "请求内容嵌套过深 / the request body is nested too deeply"


class _AnswersBeforeTheResponse:
    """Turns an exception escaping the app into a coded JSON answer, as long as no
    response has started (after that, the exception goes on: nothing can be answered)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def answer(
        self, exc: Exception, scope: Scope
    ) -> tuple[int, dict[str, Any], dict[bytes, bytes]] | None:
        """(status, JSON body, extra headers) for `exc`, or None to let it go on."""
        raise NotImplementedError

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            answer = None if started else self.answer(exc, scope)
            if answer is None:
                raise
            status, payload, extra = answer
            body = json.dumps(payload, ensure_ascii=False).encode()
            headers = {
                b"content-type": b"application/json; charset=utf-8",
                **extra,
                b"content-length": str(len(body)).encode(),
            }
            await send(
                {"type": "http.response.start", "status": status, "headers": list(headers.items())}
            )
            await send({"type": "http.response.body", "body": body})


class DeepNestingMiddleware(_AnswersBeforeTheResponse):
    """A request body nested deeper than Python's JSON parser can follow (100,000 `[`)
    raises RecursionError in whichever route parses it (GraphQL, a bot callback). That is
    the caller's input, not a server fault: 400 with a code, before anything was written."""

    def answer(
        self, exc: Exception, scope: Scope
    ) -> tuple[int, dict[str, Any], dict[bytes, bytes]] | None:
        if not isinstance(exc, RecursionError):
            return None
        log.warning("request body nested too deeply at %s", scope.get("path"))
        error = {"message": NESTED_TOO_DEEP, "code": "VALIDATION", "field": "body"}
        payload = (
            {"errors": [{"message": NESTED_TOO_DEEP, "extensions": {"code": "VALIDATION"}}]}
            if scope["path"].startswith("/graphql")
            else {"error": error}
        )
        return 400, payload, {}


class OutageMiddleware(_AnswersBeforeTheResponse):
    """A database outage outside a resolver (signing the request in, say) answers 503
    with a code and Retry-After, instead of a bare 500: the client retries, and its
    idempotency keys make the retry safe. Resolver errors are handled in GraphQL."""

    def answer(
        self, exc: Exception, scope: Scope
    ) -> tuple[int, dict[str, Any], dict[bytes, bytes]] | None:
        from api.graphql.errors import UNAVAILABLE_MESSAGE, is_transient_outage

        if not is_transient_outage(exc):
            return None
        log.warning("database unavailable at %s: %s", scope.get("path"), type(exc).__name__)
        payload = {
            "errors": [
                {"message": UNAVAILABLE_MESSAGE, "extensions": {"code": "TEMPORARILY_UNAVAILABLE"}}
            ]
        }
        return 503, payload, {b"retry-after": b"2"}


def hardening_middleware(settings: Settings) -> list[Middleware]:
    """Outermost first: CORS answers preflights before anything reads a body."""
    middleware = []
    if settings.cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_origins,
                allow_methods=["GET", "POST", "OPTIONS"],
                allow_headers=["authorization", "content-type", "x-request-id", "idempotency-key"],
                allow_credentials=False,  # bearer tokens only; cookies never authenticate
                max_age=600,
            )
        )
    middleware.append(Middleware(BodyLimitMiddleware, max_bytes=settings.max_request_bytes))
    middleware.append(Middleware(OutageMiddleware))
    middleware.append(Middleware(DeepNestingMiddleware))
    return middleware
