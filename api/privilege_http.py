"""GET /api/privilege-check: "may surgeon X perform procedure Y at time T", for other
systems (the anaesthesia system 手麻, the HIS).

    GET /api/privilege-check?surgeon=dr.li&procedure=47.0100&at=2026-12-03T08:00:00+08:00
    Authorization: Bearer <the system's service token>

`surgeon` is a username or a job number (工号); `procedure` a code of the surgery catalog;
`at` an ISO 8601 time with its offset (default: now). The answer is JSON:
`{"allowed": true|false, "status": "granted" | "suspended" | "revoked" | "not_granted" |
"unknown_surgeon" | "unknown_procedure", "message", "surgeon", "procedure", "gradeText",
"at", "grantId", "validUntil", "reason"}` with status 200 for every answer about a
surgeon; 401 without a valid service token (a user's token is not one), 400 for a
malformed question. Service tokens are configured as SHA-256 digests in
`BEDSIDE_PRIVILEGE_CHECK_TOKENS`. Every call is logged in the access log.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.domain.privilege_check import log_check, may_perform, service_client
from api.services import Services

PATH = "/api/privilege-check"


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


def _error(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    body: dict[str, object] = {"error": {"code": code, "message": message}}
    if field:
        body["error"]["field"] = field  # type: ignore[index]
    headers = {"WWW-Authenticate": 'Bearer realm="privilege-check"'} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def _parse_at(value: str | None) -> datetime | None:
    if not value:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def privilege_check_routes(services: Services) -> list[Route]:
    async def check(request: Request) -> Response:
        client = service_client(services.settings, _bearer(request))
        params = request.query_params
        query = {k: params.get(k) for k in ("surgeon", "procedure", "at")}
        address = request.client.host if request.client else None
        request_id = request.scope.get("state", {}).get("request_id")

        async def log(outcome: str) -> None:
            async with services.db.transaction() as session:
                await log_check(
                    session,
                    client=client,
                    address=address,
                    request_id=request_id,
                    query={k: (v[:80] if v else v) for k, v in query.items()},
                    outcome=outcome,
                )

        if client is None:
            await log("unauthenticated")
            return _error(
                401, "UNAUTHENTICATED", "需要有效的服务令牌 / a valid service token is required"
            )
        surgeon, procedure = (
            (params.get("surgeon") or "").strip(),
            (params.get("procedure") or "").strip(),
        )
        if not surgeon or not procedure or len(surgeon) > 80 or len(procedure) > 40:
            await log("invalid")
            field = "surgeon" if not surgeon or len(surgeon) > 80 else "procedure"
            return _error(
                400, "VALIDATION", "请提供医师和手术编码 / give surgeon and procedure", field
            )
        at = _parse_at(params.get("at"))
        if at is None:
            await log("invalid")
            return _error(
                400,
                "VALIDATION",
                "时间须为带时区的 ISO 8601 / 'at' must be ISO 8601 with an offset",
                "at",
            )
        async with services.db.transaction() as session:
            answer = await may_perform(session, surgeon=surgeon, procedure=procedure, at=at)
            await log_check(
                session,
                client=client,
                address=address,
                request_id=request_id,
                query=query,
                outcome=answer.status,
            )
        return JSONResponse(answer.as_json(at), headers={"Cache-Control": "no-store"})

    return [Route(PATH, check, methods=["GET"])]
