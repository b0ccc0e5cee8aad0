"""Photos and signatures: uploaded apart from mutations, resumably, named by sha256.

    HEAD /sync/attachments/{sha256}            -> 200 + Upload-Offset (bytes received)
    PUT  /sync/attachments/{sha256}            headers Upload-Offset, Upload-Length,
                                               Content-Type; body = the next chunk

A chunk at the wrong offset gets 409 with the offset to resume from; the last chunk is
checked against the hash (a mismatch discards the file: 422), then handed to the same
checks, storage and `attachment` row as `POST /attachments` (api.attachments), so a
file is one attachment whichever way it came. A mutation that names an attachment (by
sha256) not uploaded yet raises `AttachmentPending`: the push answers `pending` and does
not advance the client's id, so it waits instead of failing.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.auth import authenticate
from api.domain.treatments.attachments import check_upload, record_attachment
from api.errors import DomainError, ErrorCode
from api.models.base import utcnow
from api.models.sync import SyncAttachment
from api.services import Services
from api.storage import storage_of, storage_settings_of

SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
MAX_CHUNK_BYTES = 1024 * 1024


class AttachmentPending(Exception):
    def __init__(self, sha256: str) -> None:
        self.sha256 = sha256
        self.message = "附件尚未上传完成 / attachment not uploaded yet"
        super().__init__(self.message)


def partial_path(services: Services, sha256: str) -> Path:
    """Chunks collect here until the file is whole and handed to `api.storage`."""
    return Path(services.settings.data_dir) / "sync-uploads" / f"{sha256}.part"


def _error(status: int, code: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, **extra}, status_code=status)


async def attachment_endpoint(request: Request) -> Response:

    services: Services = request.app.state.services
    actor, _ = await authenticate(services, request)
    if actor is None:
        return _error(401, ErrorCode.UNAUTHENTICATED, "请先登录 / please sign in")
    sha256 = request.path_params["sha256"].lower()
    if not SHA256.match(sha256):
        return _error(422, ErrorCode.VALIDATION, "无效的哈希 / invalid sha256", field="sha256")
    partial = partial_path(services, sha256)
    if request.method == "HEAD":
        async with services.db.session() as session:
            row = await session.get(SyncAttachment, sha256)
        if row is None:
            return Response(status_code=404, headers={"Upload-Offset": "0"})
        return Response(
            status_code=200,
            headers={
                "Upload-Offset": str(row.received),
                "Upload-Length": str(row.size),
                "Upload-Complete": "1" if row.complete else "0",
            },
        )

    try:
        offset = int(request.headers.get("upload-offset", "0"))
        length = int(request.headers["upload-length"])
    except (KeyError, ValueError):
        return _error(
            422, ErrorCode.VALIDATION, "缺少 Upload-Length / Upload-Offset", field="Upload-Length"
        )
    if not 0 < length <= MAX_ATTACHMENT_BYTES:
        return _error(
            422, ErrorCode.VALIDATION, "附件过大 / attachment too large", field="Upload-Length"
        )
    body = await request.body()
    if len(body) > MAX_CHUNK_BYTES or offset + len(body) > length:
        return _error(422, ErrorCode.VALIDATION, "分片无效 / invalid chunk", field="body")
    try:
        return await _receive_chunk(services, actor, sha256, partial, request, offset, length, body)
    except DomainError as exc:
        return _error(400, exc.code, exc.message, field=exc.field)


async def _receive_chunk(
    services: Services,
    actor,
    sha256: str,
    partial: Path,
    request: Request,
    offset: int,
    length: int,
    body: bytes,
) -> Response:  # type: ignore[no-untyped-def]
    async with services.db.transaction() as session:
        row = await session.get(SyncAttachment, sha256, with_for_update=True)
        if row is None:
            row = SyncAttachment(
                sha256=sha256,
                size=length,
                received=0,
                content_type=request.headers.get("content-type", "application/octet-stream")[:100],
                uploaded_by=actor.user_id,
            )
            session.add(row)
            await session.flush()
        if row.complete:
            return JSONResponse({"sha256": sha256, "offset": row.size, "complete": True})
        if offset != row.received or length != row.size:
            return _error(
                409,
                ErrorCode.CONFLICT,
                "请从服务器偏移处续传 / resume from the server's offset",
                offset=row.received,
            )
        await asyncio.to_thread(_write_chunk, partial, offset, body)
        row.received = offset + len(body)
        if row.received == row.size:
            data = await asyncio.to_thread(partial.read_bytes)
            if hashlib.sha256(data).hexdigest() != sha256:
                await asyncio.to_thread(partial.unlink, missing_ok=True)
                await session.delete(row)
                return _error(
                    422,
                    ErrorCode.VALIDATION,
                    "内容与哈希不符 / content does not match sha256",
                    field="sha256",
                )
            content_type = check_upload(
                data,
                declared_type=row.content_type,
                max_bytes=storage_settings_of(services).max_bytes,
                actor=actor,
            )
            stored = await storage_of(services).put(data, content_type)
            await record_attachment(session, stored, actor=actor)
            await asyncio.to_thread(partial.unlink, missing_ok=True)
            row.complete = True
            row.completed_at = utcnow()
        return JSONResponse({"sha256": sha256, "offset": row.received, "complete": row.complete})


def _write_chunk(partial: Path, offset: int, body: bytes) -> None:
    partial.parent.mkdir(parents=True, exist_ok=True)
    with partial.open("r+b" if offset else "wb") as fh:
        fh.seek(offset)
        fh.write(body)
        fh.truncate()


def routes() -> list[Route]:
    return [Route("/sync/attachments/{sha256}", attachment_endpoint, methods=["HEAD", "PUT"])]
