"""Photos and signatures: uploaded apart from mutations, resumably, named by sha256.

    HEAD /sync/attachments/{sha256}            -> 200 + Upload-Offset (bytes received)
    PUT  /sync/attachments/{sha256}            headers Upload-Offset, Upload-Length,
                                               Content-Type; body = the next chunk

Only treatment staff upload, checked before the first byte is read. An unfinished upload
belongs to its uploader: HEAD answers them (and, once whole, staff who may see a record it
belongs to), anyone else gets 404 and cannot write into it; each user may have
`upload_pending_quota_bytes` announced in unfinished uploads, and the periodic sweep deletes
those older than `upload_partial_ttl_seconds`.

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
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.auth import Actor, authenticate
from api.domain.treatments.attachments import check_upload, may_see_upload, record_attachment
from api.domain.treatments.common import is_staff
from api.errors import DomainError, ErrorCode
from api.models.base import utcnow
from api.models.sync import SyncAttachment
from api.services import Services
from api.storage import storage_of, storage_settings_of

SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
MAX_CHUNK_BYTES = 1024 * 1024
UPLOAD_QUOTA = "UPLOAD_QUOTA"


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
    if request.method == "HEAD":
        return await _progress(services, actor, sha256)
    # Only treatment staff upload photos and signatures: refused before the first byte.
    if not is_staff(actor):
        return _error(403, ErrorCode.FORBIDDEN, "仅治疗科室人员可上传附件 / staff only")
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
        return await _receive_chunk(services, actor, sha256, request, offset, length, body)
    except DomainError as exc:
        return _error(400, exc.code, exc.message, field=exc.field)


async def _progress(services: Services, actor: Actor, sha256: str) -> Response:
    """How far an upload has come, for its uploader (and, once whole, staff who may see a
    record it belongs to); anyone else hears what they would if it did not exist."""
    async with services.db.session() as session:
        row = await session.get(SyncAttachment, sha256)
        visible = row is not None and await may_see_upload(
            session, actor, sha256, uploaded_by=row.uploaded_by, complete=row.complete
        )
    if row is None or not visible:
        return Response(status_code=404, headers={"Upload-Offset": "0"})
    return Response(
        status_code=200,
        headers={
            "Upload-Offset": str(row.received),
            "Upload-Length": str(row.size),
            "Upload-Complete": "1" if row.complete else "0",
        },
    )


def _expired(services: Services, row: SyncAttachment, now: datetime) -> bool:
    ttl = timedelta(seconds=services.settings.upload_partial_ttl_seconds)
    return not row.complete and row.created_at < now - ttl


async def _pending_bytes(session: AsyncSession, user_id: int, *, besides: str) -> int:
    total = (
        await session.execute(
            sa.select(sa.func.coalesce(sa.func.sum(SyncAttachment.size), 0)).where(
                SyncAttachment.uploaded_by == user_id,
                SyncAttachment.complete.is_(False),
                SyncAttachment.sha256 != besides,
            )
        )
    ).scalar_one()
    return int(total)


async def _receive_chunk(
    services: Services,
    actor: Actor,
    sha256: str,
    request: Request,
    offset: int,
    length: int,
    body: bytes,
) -> Response:
    partial = partial_path(services, sha256)
    now = utcnow()
    async with services.db.transaction() as session:
        row = await session.get(SyncAttachment, sha256, with_for_update=True)
        if row is not None and row.uploaded_by != actor.user_id and not row.complete:
            if not _expired(services, row, now):
                # An unfinished upload is its uploader's: nobody else writes into it.
                return _error(
                    409,
                    ErrorCode.CONFLICT,
                    "该文件正由他人上传，请稍后重试 / someone else is uploading this file; retry later",
                )
            await session.delete(row)  # abandoned: the sweep would delete it anyway
            await session.flush()
            await asyncio.to_thread(partial.unlink, missing_ok=True)
            row = None
        if row is None:
            quota = services.settings.upload_pending_quota_bytes
            pending = await _pending_bytes(session, actor.user_id, besides=sha256)
            if pending + length > quota:
                return _error(
                    413,
                    UPLOAD_QUOTA,
                    f"未完成的上传超过 {quota // (1024 * 1024)} MB，请先完成或等待过期 / "
                    f"unfinished uploads exceed {quota // (1024 * 1024)} MB; finish them first",
                    field="Upload-Length",
                )
            row = SyncAttachment(
                sha256=sha256,
                size=length,
                received=0,
                content_type=request.headers.get("content-type", "application/octet-stream")[:100],
                uploaded_by=actor.user_id,
                created_at=now,
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


async def expire_partial_uploads(services: Services, now: datetime) -> dict[str, object]:
    """The periodic sweep: unfinished uploads older than the setting go, row and file."""
    cutoff = now - timedelta(seconds=services.settings.upload_partial_ttl_seconds)
    async with services.db.transaction() as session:
        stale = list(
            (
                await session.execute(
                    sa.delete(SyncAttachment)
                    .where(SyncAttachment.complete.is_(False), SyncAttachment.created_at < cutoff)
                    .returning(SyncAttachment.sha256)
                )
            ).scalars()
        )
    for sha256 in stale:
        await asyncio.to_thread(partial_path(services, sha256).unlink, missing_ok=True)
    return {"partial uploads expired": len(stale)}


def _write_chunk(partial: Path, offset: int, body: bytes) -> None:
    partial.parent.mkdir(parents=True, exist_ok=True)
    with partial.open("r+b" if offset else "wb") as fh:
        fh.seek(offset)
        fh.write(body)
        fh.truncate()


def routes() -> list[Route]:
    return [Route("/sync/attachments/{sha256}", attachment_endpoint, methods=["HEAD", "PUT"])]
