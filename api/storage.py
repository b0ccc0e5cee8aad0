"""Where attachments (bedside photos, consent signatures) live.

`Storage` is three calls: `put(data, content_type) -> StoredObject` (key + sha256),
`get(key)`, `delete(key)`. The default keeps files under `settings.data_dir/attachments`;
`BEDSIDE_STORAGE_BACKEND=s3` sends them to an S3-compatible store (MinIO, Ceph, OSS in S3
mode) signed with botocore's SigV4 over httpx, so no heavy SDK is needed in the default
install (`pip install botocore` where S3 is used).

A full disk is reported as STORAGE_FULL with a clear message instead of an internal error.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import io
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from pydantic_settings import BaseSettings, SettingsConfigDict

from api.errors import DomainError

STORAGE_FULL = "STORAGE_FULL"
FULL_MESSAGE = (
    "存储空间不足，附件未保存，请联系信息科 / storage is full, the file was not saved; contact IT"
)
STORAGE_UNAVAILABLE = "STORAGE_UNAVAILABLE"
UNAVAILABLE_MESSAGE = "附件存储不可用，附件未保存，请联系信息科 / attachment storage unavailable, the file was not saved; contact IT"

log = logging.getLogger("bedside.storage")

EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


class StorageSettings(BaseSettings):
    """BEDSIDE_STORAGE_* (kept apart from the core settings: only attachments use them)."""

    model_config = SettingsConfigDict(env_prefix="BEDSIDE_STORAGE_", extra="ignore")

    backend: str = "local"  # local | s3
    max_bytes: int = 10 * 1024 * 1024
    s3_endpoint: str | None = None  # e.g. http://127.0.0.1:9000
    s3_bucket: str = "bedside"
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_region: str = "us-east-1"


@dataclass(frozen=True)
class StoredObject:
    key: str
    sha256: str
    size: int
    content_type: str


class Storage(Protocol):
    async def put(self, data: bytes, content_type: str) -> StoredObject: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...


def new_key(content_type: str) -> str:
    now = datetime.now(UTC)
    return f"{now:%Y/%m}/{uuid.uuid4().hex}.{EXTENSIONS.get(content_type, 'bin')}"


def _safe_key(key: str) -> str:
    if not key or key.startswith("/") or ".." in key.split("/") or "\\" in key:
        raise DomainError("VALIDATION", "附件标识无效 / invalid attachment key", field="key")
    return key


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / _safe_key(key)

    def _write(self, path: Path, data: bytes) -> None:
        partial = path.with_suffix(path.suffix + ".part")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(partial, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, path)  # readers never see half a file
        except OSError as exc:
            try:
                partial.unlink(missing_ok=True)
            except OSError:
                pass
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DomainError(STORAGE_FULL, FULL_MESSAGE) from exc
            log.error("attachment storage write failed: %s", type(exc).__name__, exc_info=exc)
            raise DomainError(STORAGE_UNAVAILABLE, UNAVAILABLE_MESSAGE) from exc

    async def put(self, data: bytes, content_type: str) -> StoredObject:
        key = new_key(content_type)
        await asyncio.to_thread(self._write, self._path(key), data)
        return StoredObject(key, hashlib.sha256(data).hexdigest(), len(data), content_type)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)

    def keys(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())


class S3Storage:
    """An S3-compatible bucket, path-style URLs, SigV4 (botocore) over httpx."""

    def __init__(
        self,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        region: str = "us-east-1",
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region

    def _signed(
        self, method: str, key: str, data: bytes = b"", content_type: str | None = None
    ) -> tuple[str, dict[str, str]]:
        try:
            from botocore.auth import S3SigV4Auth
            from botocore.awsrequest import AWSRequest
            from botocore.credentials import Credentials
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError("S3 storage needs botocore: pip install botocore") from exc
        url = f"{self.endpoint}/{self.bucket}/{_safe_key(key)}"
        headers = {"x-amz-content-sha256": hashlib.sha256(data).hexdigest()}
        if content_type:
            headers["content-type"] = content_type
        request = AWSRequest(method=method, url=url, data=data, headers=headers)
        S3SigV4Auth(Credentials(self.access_key, self.secret_key), "s3", self.region).add_auth(
            request
        )
        return url, dict(request.headers.items())

    async def _call(
        self, method: str, key: str, data: bytes = b"", content_type: str | None = None
    ) -> bytes:
        import httpx

        url, headers = self._signed(method, key, data, content_type)
        async with httpx.AsyncClient(timeout=30) as client:
            response = await client.request(method, url, content=data or None, headers=headers)
        if response.status_code == 507:  # MinIO/Ceph: XMinioStorageFull, InsufficientStorage
            raise DomainError(STORAGE_FULL, FULL_MESSAGE)
        if response.status_code == 404:
            if method == "DELETE":
                return b""
            raise FileNotFoundError(key)  # as the local storage does
        response.raise_for_status()
        return response.content

    async def put(self, data: bytes, content_type: str) -> StoredObject:
        key = new_key(content_type)
        await self._call("PUT", key, data, content_type)
        return StoredObject(key, hashlib.sha256(data).hexdigest(), len(data), content_type)

    async def get(self, key: str) -> bytes:
        return await self._call("GET", key)

    async def delete(self, key: str) -> None:
        await self._call("DELETE", key)


def build_storage(data_dir: Path, config: StorageSettings | None = None) -> Storage:
    config = config or StorageSettings()
    if config.backend == "s3":
        if not (config.s3_endpoint and config.s3_access_key and config.s3_secret_key):
            raise RuntimeError(
                "BEDSIDE_STORAGE_BACKEND=s3 needs BEDSIDE_STORAGE_S3_ENDPOINT, _ACCESS_KEY and _SECRET_KEY"
            )
        return S3Storage(
            config.s3_endpoint,
            config.s3_bucket,
            config.s3_access_key,
            config.s3_secret_key,
            config.s3_region,
        )
    return LocalStorage(Path(data_dir) / "attachments")


def storage_of(services: object) -> Storage:
    """The process's storage, built once and kept in `services.extras['storage']`."""
    extras: dict[str, object] = services.extras  # type: ignore[attr-defined]
    if "storage" not in extras:
        extras["storage_settings"] = StorageSettings()
        extras["storage"] = build_storage(services.settings.data_dir, extras["storage_settings"])  # type: ignore[attr-defined, arg-type]
    return extras["storage"]  # type: ignore[return-value]


def storage_settings_of(services: object) -> StorageSettings:
    storage_of(services)
    return services.extras["storage_settings"]  # type: ignore[attr-defined, no-any-return]


def sniff_image(data: bytes) -> str | None:
    """The real type of an image from its bytes (Pillow), whatever the upload claimed."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = image.format
            image.verify()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    return {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}.get(fmt or "")
