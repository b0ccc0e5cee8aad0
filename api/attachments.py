"""`POST /attachments`: upload a photo or signature (multipart `file`, bearer token).

Checked before anything is kept: size (BEDSIDE_STORAGE_MAX_BYTES) and the real image type
from the bytes. Then the bytes are stored and the row recorded in one transaction; if
recording fails the bytes are deleted, so a failed upload leaves nothing behind.
Answers `{"key", "sha256", "size", "contentType"}`; errors are
`{"error": {"code", "message", "messages": {"zh", "en"}, "field"}}` with
400/401/403/413/415/503/507.
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api import texts
from api.auth import authenticate
from api.domain.treatments.attachments import check_upload, record_attachment, require_uploader
from api.domain.treatments.common import TreatmentErrorCode
from api.errors import DomainError, ErrorCode
from api.services import Services
from api.storage import STORAGE_FULL, STORAGE_UNAVAILABLE, storage_of, storage_settings_of

log = logging.getLogger("bedside.attachments")

STATUS = {
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.FORBIDDEN: 403,
    TreatmentErrorCode.FILE_TOO_LARGE: 413,
    TreatmentErrorCode.UNSUPPORTED_TYPE: 415,
    STORAGE_FULL: 507,
    STORAGE_UNAVAILABLE: 503,
}


def _error(exc: DomainError) -> JSONResponse:
    body = {
        "error": {
            "code": exc.code,
            "message": exc.message,
            "messages": texts.split(exc.message).as_dict(),
            **({"field": exc.field} if exc.field else {}),
        }
    }
    return JSONResponse(body, status_code=STATUS.get(exc.code, 400))


async def upload_attachment(request: Request) -> Response:

    services: Services = request.app.state.services
    actor, auth_error = await authenticate(services, request)
    if actor is None:
        return _error(
            auth_error or DomainError(ErrorCode.UNAUTHENTICATED, "请先登录 / please sign in")
        )
    limit = storage_settings_of(services).max_bytes
    try:
        require_uploader(actor)  # before a byte of the body is read
        declared = int(request.headers.get("content-length") or 0)
        if declared > limit + 64 * 1024:  # refuse before reading a huge body
            raise DomainError(
                TreatmentErrorCode.FILE_TOO_LARGE,
                f"文件超过 {limit // 1024} KB 上限 / the file exceeds the {limit // 1024} KB limit",
                field="file",
            )
        async with request.form(max_files=1, max_fields=5, max_part_size=limit + 1) as form:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise DomainError(
                    ErrorCode.VALIDATION,
                    "缺少文件字段 file / the multipart field 'file' is missing",
                    field="file",
                )
            data = await upload.read(limit + 1)
            content_type = check_upload(
                data, declared_type=upload.content_type, max_bytes=limit, actor=actor
            )
        storage = storage_of(services)
        stored = await storage.put(data, content_type)
        try:
            async with services.db.transaction() as session:
                attachment = await record_attachment(session, stored, actor=actor)
        except BaseException:
            await storage.delete(stored.key)
            raise
    except DomainError as exc:
        return _error(exc)
    except ValueError as exc:  # malformed multipart
        log.info("bad upload: %s", type(exc).__name__)
        return _error(
            DomainError(ErrorCode.VALIDATION, "上传格式无效 / malformed upload", field="file")
        )
    return JSONResponse(
        {
            "id": str(attachment.id),
            "key": stored.key,
            "sha256": stored.sha256,
            "size": stored.size,
            "contentType": stored.content_type,
        },
        status_code=201,
    )


def attachment_routes() -> list[Route]:
    return [Route("/attachments", upload_attachment, methods=["POST"])]
