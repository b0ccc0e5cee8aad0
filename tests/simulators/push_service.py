"""A local web push service that checks what a browser vendor's push service checks.

* VAPID (RFC 8292): `Authorization: vapid t=<JWT>, k=<public key>`; the JWT must be
  ES256-signed by `k`, its `aud` the push service's origin, its `exp` in the future and
  no more than 24 hours ahead, and `sub` a mailto: or https: contact.
* Encryption (RFC 8291 / 8188): `Content-Encoding: aes128gcm`; the body is decrypted with
  the subscription's private key and auth secret, as the browser would.
* A subscription marked gone answers 410; unknown ones 404. A message with the same
  `Topic` as one not yet fetched replaces it.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class BrowserSubscription:
    """What `pushManager.subscribe()` returns, plus the keys only the browser holds."""

    id: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    gone: bool = False
    received: list[dict[str, Any]] = field(default_factory=list)

    @property
    def p256dh(self) -> str:
        return b64url(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    @property
    def auth_b64(self) -> str:
        return b64url(self.auth)


class PushService:
    def __init__(self) -> None:
        self.base_url = ""
        self.subscriptions: dict[str, BrowserSubscription] = {}
        self.rejections: list[str] = []
        self.application_server_key: str | None = None  # the VAPID key subscriptions are bound to

    def subscribe(self, application_server_key: str) -> BrowserSubscription:
        self.application_server_key = application_server_key
        sub_id = b64url(os.urandom(12))
        sub = BrowserSubscription(
            sub_id,
            f"{self.base_url}/push/{sub_id}",
            ec.generate_private_key(ec.SECP256R1()),
            os.urandom(16),
        )
        self.subscriptions[sub_id] = sub
        return sub

    def _reject(self, status: int, reason: str) -> Response:
        self.rejections.append(reason)
        return Response(reason, status_code=status)

    def _check_vapid(self, header: str) -> str | None:
        scheme, _, params = header.partition(" ")
        if scheme.lower() != "vapid":
            return "authorization scheme is not vapid"
        parts = dict(p.strip().split("=", 1) for p in params.split(","))
        token, key = parts.get("t"), parts.get("k")
        if not token or not key:
            return "t or k missing"
        if self.application_server_key and key != self.application_server_key:
            return "k is not the key the subscription was made with"
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
        try:
            claims = jwt.decode(
                token,
                public,
                algorithms=["ES256"],
                audience=urlparse(self.base_url)._replace(path="").geturl(),
            )
        except jwt.PyJWTError as exc:
            return f"jwt rejected: {type(exc).__name__}"
        if claims["exp"] > time.time() + 24 * 3600:
            return "exp more than 24 hours ahead"
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            return "sub is not a contact"
        return None

    async def receive(self, request: Request) -> Response:
        sub = self.subscriptions.get(request.path_params["sub_id"])
        if sub is None:
            return self._reject(404, "no such subscription")
        if sub.gone:
            return Response("gone", status_code=410)
        problem = self._check_vapid(request.headers.get("authorization", ""))
        if problem:
            return self._reject(401 if "jwt" in problem or "missing" in problem else 403, problem)
        if request.headers.get("content-encoding") != "aes128gcm":
            return self._reject(415, "content-encoding must be aes128gcm")
        if "ttl" not in request.headers:
            return self._reject(400, "TTL header missing")
        body = await request.body()
        try:
            plain = http_ece.decrypt(
                body, private_key=sub.private_key, auth_secret=sub.auth, version="aes128gcm"
            )
        except Exception as exc:  # noqa: BLE001 - any failure is a bad message
            return self._reject(400, f"cannot decrypt: {type(exc).__name__}")
        message = {
            "topic": request.headers.get("topic"),
            "urgency": request.headers.get("urgency"),
            **json.loads(plain),
        }
        if message["topic"]:
            sub.received[:] = [m for m in sub.received if m["topic"] != message["topic"]]
        sub.received.append(message)
        return Response(
            status_code=201,
            headers={"location": f"{self.base_url}/message/{b64url(os.urandom(8))}"},
        )

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/push/{sub_id}", self.receive, methods=["POST"])])
