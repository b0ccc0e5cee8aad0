"""Resumable uploads (/sync/attachments): staff only from the first byte, an unfinished
upload is its uploader's (nobody else writes into it or learns its progress), a quota of
unfinished bytes per user, and the periodic sweep deletes uploads left unfinished."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

from api import periodic
from api.models.base import utcnow
from api.models.sync import SyncAttachment
from api.models.treatments import Attachment
from api.services import Services
from notifications.delivery.scheduled import run_scheduled
from tests.conftest import GraphQLClient
from tests.treatments.helpers import count, png_bytes

MB = 1024 * 1024


def _uploads(services: Services) -> list[str]:
    folder = Path(services.settings.data_dir) / "sync-uploads"
    return sorted(p.name for p in folder.glob("*")) if folder.exists() else []


async def _token(gql: GraphQLClient, username: str) -> str:
    return (await gql.as_user(username)).token  # type: ignore[return-value]


def _headers(token: str, length: int, offset: int = 0) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "Upload-Length": str(length),
        "Upload-Offset": str(offset),
        "Content-Type": "image/png",
    }


async def test_a_patient_cannot_upload_anything(http, gql: GraphQLClient, demo: Services) -> None:
    patient = await _token(gql, "patient.zhou")
    digest = "ab" * 32  # a made-up hash: nothing is stored for it
    files = _uploads(demo)
    answer = await http.put(
        f"/sync/attachments/{digest}", content=b"x" * 1000, headers=_headers(patient, 20 * MB)
    )
    assert answer.status_code == 403 and answer.json()["code"] == "FORBIDDEN"
    assert await count(demo, SyncAttachment) == 0 and _uploads(demo) == files
    head = await http.head(f"/sync/attachments/{digest}", headers=_headers(patient, 1))
    assert head.status_code == 404
    # Nor through the one-shot upload the web app uses.
    stored = sorted((Path(demo.settings.data_dir) / "attachments").rglob("*"))
    posted = await http.post(
        "/attachments",
        files={"file": ("a.png", png_bytes(), "image/png")},
        headers={"Authorization": f"Bearer {patient}"},
    )
    assert posted.status_code == 403 and posted.json()["error"]["code"] == "FORBIDDEN"
    assert await count(demo, Attachment) == 0
    assert sorted((Path(demo.settings.data_dir) / "attachments").rglob("*")) == stored


async def test_an_unfinished_upload_is_its_uploaders_own(
    http, gql: GraphQLClient, demo: Services
) -> None:
    sun, he, zhou = [await _token(gql, u) for u in ("pt.sun", "chief.he", "patient.zhou")]
    image = png_bytes("navy", (300, 200))
    digest, half = hashlib.sha256(image).hexdigest(), len(image) // 2
    url = f"/sync/attachments/{digest}"
    first = await http.put(url, content=image[:half], headers=_headers(sun, len(image)))
    assert first.status_code == 200 and first.json()["offset"] == half
    partial = Path(demo.settings.data_dir) / "sync-uploads" / f"{digest}.part"
    on_disk = partial.read_bytes()
    # Another staff member neither continues nor restarts it, nor learns how far it is.
    for offset, chunk in ((half, image[half:]), (0, b"\x00" * half)):
        taken = await http.put(url, content=chunk, headers=_headers(he, len(image), offset))
        assert taken.status_code == 409 and "offset" not in taken.json()
    for token in (he, zhou):
        head = await http.head(url, headers=_headers(token, len(image)))
        assert head.status_code == 404 and head.headers["Upload-Offset"] == "0"
    assert partial.read_bytes() == on_disk
    async with demo.db.session() as session:
        row = await session.get(SyncAttachment, digest)
    assert (row.received, row.complete) == (half, False)
    assert await count(demo, Attachment, Attachment.sha256 == digest) == 0
    # The uploader resumes and finishes as before.
    mine = await http.head(url, headers=_headers(sun, len(image)))
    assert mine.status_code == 200 and mine.headers["Upload-Offset"] == str(half)
    done = await http.put(url, content=image[half:], headers=_headers(sun, len(image), half))
    assert done.json()["complete"] is True
    assert await count(demo, Attachment, Attachment.sha256 == digest) == 1
    # The whole file belongs to no record yet: still only the uploader's to ask about.
    assert (await http.head(url, headers=_headers(he, len(image)))).status_code == 404


async def test_unfinished_uploads_have_a_quota_per_user(
    http, gql: GraphQLClient, demo: Services
) -> None:
    sun = await _token(gql, "pt.sun")
    he = await _token(gql, "chief.he")
    files = set(_uploads(demo))
    quota = demo.settings.upload_pending_quota_bytes
    assert quota == 64 * MB  # the default: three photos of 20 MB announced at once
    for n in range(3):
        digest = f"{n:02x}" * 32
        started = await http.put(
            f"/sync/attachments/{digest}", content=b"x", headers=_headers(sun, 20 * MB)
        )
        assert started.status_code == 200
    refused = await http.put(
        f"/sync/attachments/{'ff' * 32}", content=b"x", headers=_headers(sun, 20 * MB)
    )
    assert refused.status_code == 413 and refused.json()["code"] == "UPLOAD_QUOTA"
    assert await count(demo, SyncAttachment) == 3
    assert f"{'ff' * 32}.part" not in _uploads(demo) and len(set(_uploads(demo)) - files) == 3
    # Another user's quota is their own.
    other = await http.put(
        f"/sync/attachments/{'ff' * 32}", content=b"x", headers=_headers(he, 20 * MB)
    )
    assert other.status_code == 200


async def test_the_sweep_deletes_uploads_left_unfinished(
    http, gql: GraphQLClient, demo: Services
) -> None:
    sun = await _token(gql, "pt.sun")
    he = await _token(gql, "chief.he")
    whole = png_bytes("teal", (120, 80))
    whole_digest = hashlib.sha256(whole).hexdigest()
    done = await http.put(
        f"/sync/attachments/{whole_digest}", content=whole, headers=_headers(sun, len(whole))
    )
    assert done.json()["complete"] is True
    image = png_bytes("olive", (300, 200))
    digest = hashlib.sha256(image).hexdigest()
    await http.put(
        f"/sync/attachments/{digest}", content=image[:100], headers=_headers(sun, len(image))
    )
    partial = Path(demo.settings.data_dir) / "sync-uploads" / f"{digest}.part"
    assert partial.exists()
    periodic.install(demo)
    # Within the time allowed nothing goes.
    soon = await run_scheduled(demo, utcnow() + timedelta(hours=1))
    assert soon["uploads.partial uploads expired"] == 0 and partial.exists()
    later = utcnow() + timedelta(seconds=demo.settings.upload_partial_ttl_seconds + 60)
    swept = await run_scheduled(demo, later)
    assert swept["uploads.partial uploads expired"] == 1 and not partial.exists()
    async with demo.db.session() as session:
        assert await session.get(SyncAttachment, digest) is None
        assert (await session.get(SyncAttachment, whole_digest)).complete is True
    # The hash is free again: someone else may now upload the same photo.
    again = await http.put(
        f"/sync/attachments/{digest}", content=image, headers=_headers(he, len(image))
    )
    assert again.json()["complete"] is True
