"""HTTP middleware: request ids, one JSON log line per request, metrics, security headers."""

from __future__ import annotations

import logging
import time
import uuid

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.logs import request_id_var
from api.settings import FRAME_ANCESTORS

log = logging.getLogger("bedside.http")

REQUESTS = Counter("bedside_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "bedside_http_request_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def content_security_policy(frame_ancestors: tuple[str, ...] = FRAME_ANCESTORS) -> str:
    """Scripts only from our origin; frames only inside the platforms that embed the app."""
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
        "connect-src 'self'; worker-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'self'; "
        "frame-ancestors " + " ".join(("'self'", *frame_ancestors))
    )


CSP = content_security_policy()

# Responses of these routes can carry patient data: no browser or proxy keeps a copy.
NO_STORE_PREFIXES = (
    "/graphql",
    "/fhir",
    "/attachments",
    "/sync",
    "/bots",
    "/n/",
    "/metrics",
    "/readyz",
    "/healthz",
)


def _route_label(path: str) -> str:
    for prefix in (
        "/graphql",
        "/bots/dingtalk",
        "/bots/wecom",
        "/bots/wechat-oa",
        "/healthz",
        "/readyz",
        "/metrics",
        "/assets",
    ):
        if path.startswith(prefix):
            return prefix
    return "/other"


class RequestMiddleware:
    """Pure ASGI so it adds nothing to streamed responses and works for every route."""

    def __init__(
        self, app: ASGIApp, *, https: bool = False, frame_ancestors: tuple[str, ...] | None = None
    ) -> None:
        self.app = app
        self.https = https
        self.csp = (
            CSP if frame_ancestors is None else content_security_policy(tuple(frame_ancestors))
        ).encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")[:64]
        request_id = incoming or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                extra = [
                    (b"x-request-id", request_id.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"same-origin"),
                    (b"content-security-policy", self.csp),
                ]
                if self.https:
                    extra.append(
                        (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
                    )
                headers = list(message.get("headers", []))
                if scope["path"].startswith(NO_STORE_PREFIXES):
                    headers = [(k, v) for k, v in headers if k.lower() != b"cache-control"]
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = headers + extra
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_label(scope["path"])
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            LATENCY.labels(route).observe(elapsed)
            if route not in ("/healthz", "/metrics"):
                log.info(
                    "request",
                    extra={
                        "fields": {
                            "method": scope["method"],
                            "path": scope["path"],
                            "status": status,
                            "ms": round(elapsed * 1000, 1),
                        }
                    },
                )
            request_id_var.reset(token)
