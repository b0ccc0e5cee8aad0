"""HTTP endpoints for staff identity binding and WeCom in-app login."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from api.auth import Actor, authenticate
from api.errors import DomainError
from api.services import Services
from bots import identity
from bots.dingtalk import exchange_login


def error(exc: DomainError, status: int = 400) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": exc.code, "field": exc.field, "message": exc.message}},
        status_code=status,
    )


async def bearer_actor(services: Services, request: Request) -> Actor | None:
    actor, _ = await authenticate(services, request)
    return actor


async def redeem(request: Request) -> Response:
    """`POST /bots/bind {"token"}` with `Authorization: Bearer`: bind the link's platform id."""
    services: Services = request.app.state.services
    actor = await bearer_actor(services, request)
    if actor is None:
        return JSONResponse(
            {"error": {"code": "UNAUTHENTICATED", "message": "请先登录 / please sign in"}},
            status_code=401,
        )
    try:
        token = str((await request.json())["token"])
    except (ValueError, KeyError, TypeError):
        return JSONResponse(
            {
                "error": {
                    "code": "VALIDATION",
                    "field": "token",
                    "message": "缺少 token / token is required",
                }
            },
            status_code=400,
        )
    try:
        async with services.db.transaction() as session:
            platform, external_id = await identity.redeem_binding_link(session, token, actor=actor)
    except DomainError as exc:
        status = {"NOT_FOUND": 404, "FORBIDDEN": 403}.get(exc.code, 409)
        return error(exc, status)
    return JSONResponse({"platform": platform, "externalId": external_id})


async def wecom_login(request: Request) -> Response:
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
    return await exchange_login(services, "wecom", code)
