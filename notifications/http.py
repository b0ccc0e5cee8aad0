"""`GET /n/{id}?sig=…`: the link in every message. Opening it counts as reading the
notice (source `link`) and lands on the notice in the PWA."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from api.errors import DomainError
from api.models.notices import Notice
from notifications.delivery.texts import link_signature
from notifications.reads import mark_read


async def open_notice_link(request: Request) -> Response:
    services = request.app.state.services
    try:
        notice_id = int(request.path_params["notice_id"])
    except ValueError:
        return PlainTextResponse("链接无效 / invalid link", status_code=404)
    sig = request.query_params.get("sig", "")
    async with services.db.transaction() as session:
        notice = await session.get(Notice, notice_id)
        expected = (
            link_signature(services.settings.effective_secret_key, notice_id, notice.recipient_id)
            if notice
            else ""
        )
        if notice is None or not hmac.compare_digest(sig, expected):
            return PlainTextResponse("链接无效 / invalid link", status_code=404)
        try:
            await mark_read(session, notice_id, user_id=notice.recipient_id, source="link")
        except DomainError:
            return PlainTextResponse("链接无效 / invalid link", status_code=404)
    return RedirectResponse(f"/notices/{notice_id}", status_code=303)


def notification_routes() -> list[Route]:
    return [Route("/n/{notice_id}", open_notice_link, methods=["GET"])]
