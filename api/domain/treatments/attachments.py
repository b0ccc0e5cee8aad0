"""Uploaded attachments: checked (size, real image type) before anything is stored.

The HTTP route validates, puts the bytes into storage, then records the row in its own
transaction; if recording fails it deletes the bytes again, so a failed upload leaves
neither a file nor a row behind.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.auth import Actor
from api.domain.people import require_staff
from api.domain.treatments.access import visible_patient_ids
from api.domain.treatments.common import TreatmentErrorCode, is_staff
from api.errors import DomainError, ErrorCode
from api.models.treatments import Attachment, TreatmentRecord
from api.storage import StoredObject, sniff_image

ALLOWED_TYPES = ("image/jpeg", "image/png", "image/webp")


def require_uploader(actor: Actor) -> None:
    """Who may upload a file: staff — treatment photos and signatures, a surgery
    application's pre-operative documents, a process form's attachments (a sick note).
    Checked before a byte is read. A file is only stored here; whoever attaches it to a
    record, an application or a form is checked there for that record."""
    require_staff(actor, "仅医务人员可上传附件 / only staff may upload files")


def check_upload(data: bytes, *, declared_type: str | None, max_bytes: int, actor: Actor) -> str:
    """The content type to store, or a clear error naming the `file` field."""
    require_uploader(actor)
    if not data:
        raise DomainError(ErrorCode.VALIDATION, "文件为空 / the file is empty", field="file")
    if len(data) > max_bytes:
        raise DomainError(
            TreatmentErrorCode.FILE_TOO_LARGE,
            f"文件超过 {max_bytes // 1024} KB 上限 / the file exceeds the {max_bytes // 1024} KB limit",
            field="file",
        )
    real = sniff_image(data)
    if real not in ALLOWED_TYPES:
        raise DomainError(
            TreatmentErrorCode.UNSUPPORTED_TYPE,
            "仅支持 JPEG、PNG、WebP 图片 / only JPEG, PNG or WebP images are accepted",
            field="file",
        )
    if declared_type and declared_type.split(";")[0].strip() not in (
        real,
        "application/octet-stream",
    ):
        raise DomainError(
            TreatmentErrorCode.UNSUPPORTED_TYPE,
            "文件内容与声明的类型不符 / the file's content does not match its declared type",
            field="file",
        )
    return real


async def record_attachment(
    session: AsyncSession, stored: StoredObject, *, actor: Actor
) -> Attachment:
    attachment = Attachment(
        key=stored.key,
        sha256=stored.sha256,
        content_type=stored.content_type,
        size=stored.size,
        uploaded_by_id=actor.user_id or None,
    )
    session.add(attachment)
    await session.flush()
    return attachment


async def may_see_upload(
    session: AsyncSession, actor: Actor, sha256: str, *, uploaded_by: int, complete: bool
) -> bool:
    """Whether the actor may learn how far an upload has come: its uploader, or (once it
    is whole) staff who may see a record it belongs to."""
    if actor.user_id and actor.user_id == uploaded_by:
        return True
    if not complete or not is_staff(actor):
        return False
    linked = (
        await session.execute(
            sa.select(col(Attachment.id))
            .join(TreatmentRecord, col(TreatmentRecord.id) == col(Attachment.record_id))
            .where(
                col(Attachment.sha256) == sha256,
                col(Attachment.deleted_at).is_(None),
                col(TreatmentRecord.patient_id).in_(visible_patient_ids(actor)),
            )
            .limit(1)
        )
    ).first()
    return linked is not None
