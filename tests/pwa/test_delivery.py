"""How the app reaches a device: its hashed assets gzipped and cached for a year, and
nothing in it that loads from a host outside the hospital's server."""

from __future__ import annotations

import gzip
import re

import httpx
import pytest

from api.app import PWA_DIST

pytestmark = pytest.mark.skipif(
    not (PWA_DIST / "index.html").exists(), reason="the PWA is not built (make pwa)"
)


def _largest_script() -> str:
    scripts = sorted((PWA_DIST / "assets").glob("*.js"), key=lambda p: p.stat().st_size)
    return scripts[-1].name


async def test_assets_are_gzipped_and_cached_for_a_year(http: httpx.AsyncClient) -> None:
    name = _largest_script()
    original = (PWA_DIST / "assets" / name).read_bytes()
    response = await http.get(f"/assets/{name}", headers={"accept-encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.content == original  # httpx decodes: the same bytes as the file
    on_the_wire = int(response.headers.get("content-length") or len(gzip.compress(original)))
    assert on_the_wire < len(original) / 2


async def test_a_client_without_gzip_gets_the_plain_file(http: httpx.AsyncClient) -> None:
    name = _largest_script()
    response = await http.get(f"/assets/{name}", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in response.headers
    assert response.content == (PWA_DIST / "assets" / name).read_bytes()


async def test_the_shell_is_revalidated_not_kept(http: httpx.AsyncClient) -> None:
    response = await http.get("/", headers={"accept-encoding": "gzip"})
    assert response.headers["cache-control"] == "no-cache"


def test_no_style_loads_anything_from_another_host() -> None:
    remote = re.compile(r"url\(\s*['\"]?(?:https?:)?//", re.IGNORECASE)
    offenders = {
        css.name: remote.findall(css.read_text()) for css in (PWA_DIST / "assets").glob("*.css")
    }
    assert {name: found for name, found in offenders.items() if found} == {}
