"""The administrator's desk: the staff list, password resets, imports from an uploaded
file, and the hash chains' verification shown in the app."""

from __future__ import annotations

import base64
import binascii
import secrets
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.audit import ChainBreak, append_event, verify_chains
from api.auth import Actor, PasswordHashing
from api.domain.imports import ImportReport, run_import
from api.domain.imports.base import CREATE, UNCHANGED, UPDATE
from api.domain.imports.table import SUFFIXES
from api.domain.security import check_password_policy
from api.errors import DomainError, ErrorCode, forbidden, invalid
from api.models.base import utcnow
from api.models.people import Department, User
from api.settings import Settings

ADMIN_ONLY = "仅系统管理员可执行此操作 / only an administrator may do this"
# An uploaded import file (base64 in a GraphQL request, itself at most
# `max_request_bytes`, 2 MiB): a 2,000-person staff sheet is well under 1 MiB.
MAX_IMPORT_BYTES = 1024 * 1024


def require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise forbidden(ADMIN_ONLY)


async def list_users(
    session: AsyncSession,
    actor: Actor,
    *,
    search: str | None = None,
    include_inactive: bool = True,
    limit: int = 200,
) -> list[User]:
    """Everyone with an account (staff and patients), by username; `search` matches the
    name, username or job number."""
    require_admin(actor)
    stmt = sa.select(User).order_by(col(User.username)).limit(min(max(limit, 1), 500))
    if search and search.strip():
        pattern = f"%{search.strip().lower()}%"
        stmt = stmt.where(
            sa.or_(
                sa.func.lower(col(User.username)).like(pattern),
                sa.func.lower(col(User.display_name)).like(pattern),
                sa.func.lower(sa.func.coalesce(col(User.job_number), "")).like(pattern),
            )
        )
    if not include_inactive:
        stmt = stmt.where(col(User.is_active).is_(True))
    return list((await session.execute(stmt)).scalars())


async def list_departments(session: AsyncSession, actor: Actor) -> list[Department]:
    require_admin(actor)
    stmt = sa.select(Department).order_by(col(Department.code))
    return list((await session.execute(stmt)).scalars())


def one_time_password() -> str:
    """12 characters with upper case, lower case and digits (no look-alikes such as 0/O)."""
    upper = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    lower = "abcdefghijkmnpqrstuvwxyz"
    digits = "23456789"
    alphabet = upper + lower + digits
    while True:
        word = "".join(secrets.choice(alphabet) for _ in range(12))
        if (
            any(c in upper for c in word)
            and any(c in lower for c in word)
            and any(c in digits for c in word)
        ):
            return word


async def reset_password(
    session: AsyncSession,
    settings: Settings,
    hashing: PasswordHashing,
    user: User,
    *,
    actor: Actor,
) -> str:
    """Give the user a one-time password (returned once, to hand over in person): it must
    be changed at the next sign-in; every token the user holds is revoked and a lockout
    ends. The password itself is never stored in the history."""
    require_admin(actor)
    if not user.is_active:
        raise DomainError(
            ErrorCode.CONFLICT, "账户已停用，不能重置密码 / the account is deactivated"
        )
    password = one_time_password()
    while user.username and user.username.lower() in password.lower():
        password = one_time_password()  # pragma: no cover - a 12-letter clash is rare
    check_password_policy(settings, password, username=user.username)
    user.password_hash = hashing.hash(password)
    user.password_must_change = True
    user.token_version += 1
    user.locked_until = None
    user.failed_logins = 0
    await session.flush()
    await append_event(
        session, f"user:{user.id}", "password_reset", actor=actor, data={"user_id": user.id}
    )
    return password


def decode_upload(filename: str, content_base64: str) -> bytes:
    """An uploaded file's bytes, refusing a wrong type, bad base64 or a file too large."""
    suffix = Path(filename or "").suffix.lower()
    if suffix not in SUFFIXES:
        raise invalid("filename", "仅支持 .xlsx 和 .csv / only .xlsx and .csv files")
    # base64 is 4 characters per 3 bytes: refuse before decoding a huge string.
    if len(content_base64) > (MAX_IMPORT_BYTES * 4) // 3 + 8:
        raise invalid(
            "content",
            f"文件过大（上限 {MAX_IMPORT_BYTES // (1024 * 1024)} MB）"
            f" / file too large (at most {MAX_IMPORT_BYTES // (1024 * 1024)} MB)",
        )
    try:
        data = base64.b64decode(content_base64, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("content", "文件内容无法读取 / the file content is not base64") from None
    if not data:
        raise invalid("content", "文件为空 / the file is empty")
    if len(data) > MAX_IMPORT_BYTES:
        raise invalid("content", "文件过大 / file too large")
    return data


async def import_upload(
    session: AsyncSession,
    kind: str,
    filename: str,
    data: bytes,
    *,
    actor: Actor,
    settings: Settings,
    hashing: PasswordHashing,
) -> ImportReport:
    """`run_import` over an uploaded file, in the caller's transaction (the caller commits
    only when the report is ok and the admin confirmed)."""
    require_admin(actor)
    suffix = Path(filename).suffix.lower()
    with tempfile.TemporaryDirectory(prefix="bedside-import-") as folder:
        path = Path(folder) / f"upload{suffix}"
        path.write_bytes(data)
        report = await run_import(
            session, kind, path, actor=actor, settings=settings, hashing=hashing
        )
    if report.ok:
        await append_event(
            session,
            f"import:{kind}",
            "imported",
            actor=actor,
            data={
                "kind": kind,
                "file": Path(filename).name[:200],
                "created": report.count(CREATE),
                "updated": report.count(UPDATE),
                "unchanged": report.count(UNCHANGED),
            },
        )
    return report


@dataclass
class AuditVerification:
    at: datetime
    breaks: list[ChainBreak]

    @property
    def intact(self) -> bool:
        return not self.breaks


async def verify_audit(session: AsyncSession, actor: Actor) -> AuditVerification:
    """`bedside audit verify` from the app: every hash chain checked now."""
    require_admin(actor)
    at = utcnow()
    return AuditVerification(at=at, breaks=await verify_chains(session))


__all__ = [
    "MAX_IMPORT_BYTES",
    "AuditVerification",
    "decode_upload",
    "import_upload",
    "list_departments",
    "list_users",
    "reset_password",
    "verify_audit",
]
