"""The hospital's WeChat Official Account: menu, messages, web OAuth, patient binding.

Callback (`/bots/wechat-oa/callback`): GET is the server-address check (`signature` over
token/timestamp/nonce, answer `echostr`); POST carries a message or event — in safe mode
(`encrypt_type=aes`) encrypted and signed (`msg_signature`), decrypted with wechatpy's
WeChatCrypto, the passive reply encrypted the same way. 预约治疗, 我的预约 and 随访 (menu
or typed) answer with a link into the PWA's patient pages through web OAuth.

Web OAuth (snsapi_base, silent): `/bots/wechat-oa/oauth?next=/patient/book` redirects to
WeChat with a short random `state` (WeChat takes a-zA-Z0-9, at most 128 bytes) whose
destination is kept in `bot_oauth_state`; WeChat returns to
`/bots/wechat-oa/oauth/callback?code=&state=`; the state is used once; the code gives
the openid; a bound patient goes to `next` with a Bedside token in the URL fragment, an
unbound one to `/patient/bind` with a short-lived ticket, which `POST /bots/wechat-oa/bind`
redeems with name, ID number and phone.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import jwt
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from wechatpy import create_reply, parse_message
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature

from api.auth import Actor, issue_token
from api.domain.patient_binding import bind_openid_to_patient
from api.domain.people import user_for_external_id
from api.errors import DomainError
from api.models.base import utcnow
from api.models.bots import BotOAuthState
from api.services import Services
from bots.guard import CallbackRefused, check_fresh, claim_nonce
from integrations.platforms import PlatformError, get_platforms
from integrations.platforms.base import PlatformNotConfigured

log = logging.getLogger("bedside.bots.wechat_oa")
PLATFORM = "wechat_oa"
TICKET_TTL = timedelta(minutes=15)
STATE_TTL = timedelta(minutes=10)

# What each entry leads to in the PWA.
PAGES = {
    "BOOK": ("预约治疗", "/patient/book"),
    "MY_BOOKINGS": ("我的预约", "/patient/appointments"),
    "FOLLOW_UP": ("随访", "/patient/follow-ups"),
}
KEYWORDS = {"预约治疗": "BOOK", "预约": "BOOK", "我的预约": "MY_BOOKINGS", "随访": "FOLLOW_UP"}


def oauth_entry(services: Services, page: str) -> str:
    return f"{services.settings.public_url.rstrip('/')}/bots/wechat-oa/oauth?{urlencode({'next': page})}"


def menu(services: Services) -> list[dict[str, Any]]:
    """The account's menu: three view buttons into the patient pages."""
    return [
        {"type": "view", "name": title, "url": oauth_entry(services, page)}
        for title, page in PAGES.values()
    ]


async def publish_menu(services: Services) -> None:
    await get_platforms(services).wechat_oa.create_menu(menu(services))


def reply_text(services: Services, key: str | None) -> str:
    if key in PAGES:
        title, page = PAGES[key]
        return f'{title}：<a href="{oauth_entry(services, page)}">点此进入 / open</a>'
    links = " | ".join(
        f'<a href="{oauth_entry(services, page)}">{title}</a>' for title, page in PAGES.values()
    )
    return f"您好，这里是医院床旁服务。/ Welcome.\n{links}"


# -- callback ------------------------------------------------------------------------------
async def callback(request: Request) -> Response:
    services: Services = request.app.state.services
    client = get_platforms(services).wechat_oa
    q = request.query_params
    timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
    if not client.callback_token:
        # Without a token the signature is a hash anyone can compute: refuse everything.
        log.error(
            "Official Account callback refused: BEDSIDE_WECHAT_OA_TOKEN is not set; "
            "configure it to accept the platform's messages"
        )
        # The same answer as every platform the hospital has not set up (the route's guard,
        # bots.not_configured_is_not_found).
        raise PlatformNotConfigured("BEDSIDE_WECHAT_OA_TOKEN is not set")
    try:
        check_fresh(services, timestamp)
        try:
            check_signature(client.callback_token, q.get("signature", ""), timestamp, nonce)
        except InvalidSignatureException:
            raise CallbackRefused("bad signature") from None
        if request.method == "GET":
            return PlainTextResponse(q.get("echostr", ""))
        raw = await request.body()
        crypto = client.callback_crypto()
        safe_mode = q.get("encrypt_type") == "aes"
        if safe_mode:
            if crypto is None:
                raise CallbackRefused("safe mode without an AES key")
            try:
                raw = crypto.decrypt_message(
                    raw, q.get("msg_signature", ""), timestamp, nonce
                ).encode()
            except Exception as exc:  # noqa: BLE001 - any failure is a refused callback
                raise CallbackRefused(
                    f"bad msg_signature or payload ({type(exc).__name__})"
                ) from None
        elif crypto is not None:
            raise CallbackRefused("plain message while safe mode is configured")
        try:
            message = parse_message(raw)
        except Exception as exc:  # noqa: BLE001
            raise CallbackRefused(f"unreadable message ({type(exc).__name__})") from None
        await claim_nonce(services, PLATFORM, timestamp, nonce)
    except CallbackRefused as refused:
        log.warning("Official Account callback refused: %s", refused.reason)
        return PlainTextResponse("forbidden", status_code=403)

    key = None
    if message.type == "text":
        key = KEYWORDS.get(message.content.strip())
    elif message.type == "event" and getattr(message, "event", "") == "click":
        key = message.key
    elif message.type == "event" and getattr(message, "event", "") not in {"subscribe"}:
        return PlainTextResponse("success")
    reply = create_reply(reply_text(services, key), message)
    xml = reply.render()
    if safe_mode and crypto is not None:
        xml = crypto.encrypt_message(xml, nonce, timestamp)
    return Response(xml, media_type="application/xml")


# -- web OAuth -----------------------------------------------------------------------------
def _safe_next(value: str | None) -> str:
    """Only paths inside the PWA: no open redirect."""
    if not value or not value.startswith("/") or value.startswith("//"):
        return "/patient/appointments"
    return value


def _sign(services: Services, claims: dict[str, Any], ttl: timedelta) -> str:
    exp = datetime.now(UTC) + ttl
    return jwt.encode(
        {**claims, "exp": int(exp.timestamp())},
        services.settings.effective_secret_key,
        algorithm="HS256",
    )


def _read(services: Services, token: str, purpose: str) -> dict[str, Any] | None:
    try:
        claims = jwt.decode(token, services.settings.effective_secret_key, algorithms=["HS256"])
    except jwt.PyJWTError:
        return None
    return claims if claims.get("purpose") == purpose else None


def _state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


async def new_oauth_state(services: Services, next_page: str) -> str:
    """A state WeChat accepts (a-zA-Z0-9, at most 128 bytes: 网页授权, 第一步 state 参数)
    whose destination is kept on the server, used once, for STATE_TTL."""
    state = secrets.token_hex(16)  # 32 characters of [0-9a-f]
    now = utcnow()
    async with services.db.transaction() as session:
        await session.execute(
            sa.delete(BotOAuthState).where(BotOAuthState.expires_at < now - timedelta(days=1))
        )
        session.add(
            BotOAuthState(
                state_hash=_state_hash(state),
                next_path=_safe_next(next_page)[:500],
                expires_at=now + STATE_TTL,
            )
        )
    return state


async def take_oauth_state(services: Services, state: str) -> str | None:
    """Where the state leads, once; None for an unknown, used or expired state."""
    if not state or len(state) > 128 or not state.isalnum():
        return None
    async with services.db.transaction() as session:
        taken = await session.execute(
            sa.update(BotOAuthState)
            .where(
                BotOAuthState.state_hash == _state_hash(state),
                BotOAuthState.used_at.is_(None),
                BotOAuthState.expires_at > utcnow(),
            )
            .values(used_at=utcnow())
            .returning(BotOAuthState.next_path)
        )
        return taken.scalar_one_or_none()


async def oauth_start(request: Request) -> Response:
    services: Services = request.app.state.services
    client = get_platforms(services).wechat_oa
    state = await new_oauth_state(services, request.query_params.get("next") or "")
    redirect_uri = f"{services.settings.public_url.rstrip('/')}/bots/wechat-oa/oauth/callback"
    return RedirectResponse(client.authorize_url(redirect_uri, state=state), status_code=302)


EXPIRED_LINK = "授权已失效，请从公众号菜单重新进入 / the link expired: open it again from the menu"


async def oauth_callback(request: Request) -> Response:
    services: Services = request.app.state.services
    code = request.query_params.get("code")
    if not code:  # the patient refused, or not a return from WeChat
        return PlainTextResponse(EXPIRED_LINK, status_code=400)
    next_path = await take_oauth_state(services, request.query_params.get("state", ""))
    if next_path is None:
        return PlainTextResponse(EXPIRED_LINK, status_code=400)
    try:
        openid = await get_platforms(services).wechat_oa.openid_for_code(code)
    except PlatformError:
        return PlainTextResponse(EXPIRED_LINK, status_code=400)
    next_page = _safe_next(next_path)
    async with services.db.session() as session:
        user = await user_for_external_id(session, PLATFORM, openid)
    if user is not None and user.is_active:
        # The token travels in the fragment: never sent to a server, not in access logs.
        return RedirectResponse(
            f"{next_page}#token={issue_token(services.settings, user)}", status_code=302
        )
    ticket = _sign(services, {"purpose": "oa-bind", "openid": openid}, TICKET_TTL)
    return RedirectResponse(
        f"/patient/bind?next={quote(next_page, safe='')}#ticket={ticket}", status_code=302
    )


async def bind(request: Request) -> Response:
    """`POST {ticket, name, idNumber, phone}` → `{token}` once the archive matches."""
    services: Services = request.app.state.services
    try:
        body = await request.json()
        claims = _read(services, str(body["ticket"]), "oa-bind")
        name, id_number, phone = str(body["name"]), str(body["idNumber"]), str(body["phone"])
    except (ValueError, KeyError, TypeError):
        return JSONResponse(
            {
                "error": {
                    "code": "VALIDATION",
                    "message": "缺少字段 / ticket, name, idNumber and phone are required",
                }
            },
            status_code=400,
        )
    if claims is None:
        return JSONResponse(
            {
                "error": {
                    "code": "UNAUTHENTICATED",
                    "field": "ticket",
                    "message": "授权已过期，请重新进入 / the ticket expired",
                }
            },
            status_code=401,
        )
    client_ip = request.client.host if request.client else None
    actor = Actor(
        user_id=0,
        username=f"openid:{claims['openid'][:8]}",
        roles=frozenset(),
        department_id=None,
        via=PLATFORM,
        ip=client_ip,
    )
    try:
        async with services.db.transaction() as session:
            outcome = await bind_openid_to_patient(
                session,
                services.cipher,
                openid=claims["openid"],
                name=name,
                id_number=id_number,
                phone=phone,
                actor=actor,
            )
    except DomainError as exc:
        return JSONResponse(
            {"error": {"code": exc.code, "field": exc.field, "message": exc.message}},
            status_code=409 if exc.code == "CONFLICT" else 400,
        )
    if outcome.error is not None or outcome.user is None:
        err = outcome.error
        status = {"RATE_LIMITED": 429, "ALREADY_BOUND": 409}.get(err.code if err else "", 400)
        return JSONResponse(
            {
                "error": {
                    "code": err.code if err else "VALIDATION",
                    "field": err.field if err else None,
                    "message": err.message if err else "",
                }
            },
            status_code=status,
        )
    return JSONResponse(
        {"token": issue_token(services.settings, outcome.user), "username": outcome.user.username}
    )
