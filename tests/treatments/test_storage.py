"""Attachments in an S3-compatible store (moto's local S3 server), through the upload route."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import httpx
import pytest

from api.services import Services
from api.storage import S3Storage, StorageSettings
from tests.conftest import GraphQLClient
from tests.treatments.helpers import png_bytes

moto_server = pytest.importorskip("moto.server", reason="moto[server] provides the local S3")
pytest.importorskip("botocore", reason="the S3 storage signs requests with botocore")


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        endpoint = f"http://{host}:{port}"
        assert httpx.put(f"{endpoint}/bedside").status_code == 200  # the bucket
        yield endpoint
    finally:
        server.stop()


async def test_upload_to_s3_round_trip(
    gql: GraphQLClient, demo: Services, http: httpx.AsyncClient, s3_endpoint: str
) -> None:
    storage = S3Storage(s3_endpoint, "bedside", "bedside-access", "bedside-secret")
    demo.extras["storage_settings"] = StorageSettings(backend="s3", max_bytes=1024 * 1024)
    demo.extras["storage"] = storage
    sun = await gql.as_user("pt.sun")
    image = png_bytes("green")
    response = await http.post(
        "/attachments",
        files={"file": ("g.png", image, "image/png")},
        headers={"Authorization": f"Bearer {sun.token}"},
    )
    assert response.status_code == 201, response.text
    stored = response.json()
    assert stored["sha256"] == hashlib.sha256(image).hexdigest()
    assert await storage.get(stored["key"]) == image
    await storage.delete(stored["key"])
    with pytest.raises(FileNotFoundError):
        await storage.get(stored["key"])
