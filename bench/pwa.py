"""What a first visit to the app costs on a slow ward network, beside a plain static page.

Prints, for the built PWA (pwa/dist, served by the real server) and for a plain HTML page
with one stylesheet and no script (served by the same static handler: gzip, immutable
hashed assets, index.html no-cache):

- first-load JS: the scripts index.html loads before the first screen (entry and
  modulepreloads), raw and gzipped;
- bytes on the wire of the first visit (every response of the page, headers included, as
  Chromium counts them; the service worker's own precache fetches come after and are not
  counted);
- first render (first-contentful-paint) online, on an emulated 1.6 Mbit/s link with 150 ms
  latency, and offline on a second visit (the service worker's shell; the plain page has
  none, so it cannot render offline);
- the ratios app / plain page.

    .venv/bin/python bench/pwa.py [--rounds 3] [--kbps 1600] [--latency-ms 150]

Needs `make pwa` (pwa/dist), PostgreSQL (a scratch database) and /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import scratch_database  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "pwa" / "dist"
CHROMIUM = "/usr/bin/chromium"

PLAIN_HTML = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>床旁</title><link rel="stylesheet" href="/assets/plain-0000.css"></head>
<body><main><h1>床旁 · 登录</h1><p>用户名</p><input><p>密码</p><input type="password">
<button>登录</button></main></body></html>
"""
PLAIN_CSS = "\n".join(
    f".c{i} {{ margin: {i % 7}px; padding: {i % 5}px; color: #323233; }}" for i in range(120)
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(url: str, process: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 30
    with httpx.Client() as client:
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise SystemExit(f"the server exited with {process.returncode}")
            try:
                if client.get(url).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within 30 s")


def first_load_js() -> tuple[int, int, int]:
    """(files, raw bytes, gzipped bytes) of the scripts index.html loads up front."""
    html = (DIST / "index.html").read_text(encoding="utf-8")
    paths = set(re.findall(r'<script[^>]+src="([^"]+\.js)"', html))
    paths |= set(re.findall(r'<link[^>]+rel="modulepreload"[^>]+href="([^"]+\.js)"', html))
    raw = gz = 0
    for path in paths:
        data = (DIST / path.lstrip("/")).read_bytes()
        raw += len(data)
        gz += len(gzip.compress(data, compresslevel=9))
    return len(paths), raw, gz


def plain_server(directory: Path) -> tuple[str, Any]:
    """The plain page behind the app's own static handler, in a thread."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import FileResponse
    from starlette.routing import Mount, Route

    from api.app import hashed_assets

    async def index(_: Any) -> FileResponse:
        return FileResponse(directory / "index.html", headers={"cache-control": "no-cache"})

    app = Starlette(
        routes=[Mount("/assets", app=hashed_assets(directory / "assets")), Route("/", index)]
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    _wait_up(base + "/")
    return base, server


async def visit(
    browser: Any, url: str, *, kbps: int, latency_ms: int, offline_too: bool
) -> dict[str, Any]:
    """One fresh profile: the first visit throttled, then (if asked) a visit offline."""
    context = await browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": latency_ms,
            "downloadThroughput": kbps * 1000 / 8,
            "uploadThroughput": kbps * 1000 / 8,
        },
    )
    wire = 0

    def received(event: dict[str, Any]) -> None:
        nonlocal wire
        wire += int(event.get("encodedDataLength") or 0)

    cdp.on("Network.loadingFinished", received)
    fcp_js = (
        "new Promise(r => { const e = performance.getEntriesByName('first-contentful-paint')[0];"
        " if (e) return r(e.startTime); new PerformanceObserver(l => r(l.getEntries()[0].startTime))"
        ".observe({type: 'paint', buffered: true}); setTimeout(() => r(null), 20000) })"
    )
    await page.goto(url, wait_until="load")
    online = await page.evaluate(fcp_js)
    await page.wait_for_load_state("networkidle")
    result: dict[str, Any] = {"online_ms": online, "wire": wire, "offline_ms": None}
    if offline_too:
        ready = await page.evaluate(
            "Promise.race([navigator.serviceWorker ? navigator.serviceWorker.ready.then(() => true) : false,"
            " new Promise(r => setTimeout(() => r(false), 20000))])"
        )
        if ready:
            await context.set_offline(True)
            await cdp.send(
                "Network.emulateNetworkConditions",
                {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
            )
            second = await context.new_page()
            try:
                await second.goto(url, wait_until="load")
                result["offline_ms"] = await second.evaluate(fcp_js)
            except Exception:  # noqa: BLE001 - no offline shell: it does not render
                result["offline_ms"] = None
    await context.close()
    return result


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def fmt_ms(value: float | None) -> str:
    return f"{value:8.0f} ms" if value is not None else "   (none)"


async def run(args: argparse.Namespace) -> None:
    from playwright.async_api import async_playwright

    if not (DIST / "index.html").exists():
        raise SystemExit("pwa/dist is missing: run `make pwa` first")
    files, raw, gz = first_load_js()
    with tempfile.TemporaryDirectory() as tmp:
        plain_dir = Path(tmp) / "plain"
        (plain_dir / "assets").mkdir(parents=True)
        (plain_dir / "index.html").write_text(PLAIN_HTML, encoding="utf-8")
        (plain_dir / "assets" / "plain-0000.css").write_text(PLAIN_CSS, encoding="utf-8")
        plain_base, plain = plain_server(plain_dir)
        async with scratch_database("bench_pwa") as url:
            port = _free_port()
            env = {
                **os.environ,
                "BEDSIDE_DATABASE_URL": url,
                "BEDSIDE_SECRET_KEY": "bench-" + "x" * 40,
                "BEDSIDE_DATA_DIR": str(Path(tmp) / "data"),
                "BEDSIDE_LOG_LEVEL": "WARNING",
            }
            env.pop("BEDSIDE_REDIS_URL", None)
            server = subprocess.Popen(  # noqa: ASYNC220 - started once, before measuring
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "api.asgi:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                ],
                cwd=ROOT,
                env=env,
            )
            app_base = f"http://127.0.0.1:{port}"
            try:
                _wait_up(app_base + "/healthz", server)
                async with async_playwright() as p:
                    browser = await p.chromium.launch(
                        executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
                    )
                    app_runs, plain_runs = [], []
                    for _ in range(args.rounds):
                        app_runs.append(
                            await visit(
                                browser,
                                app_base + "/login",
                                kbps=args.kbps,
                                latency_ms=args.latency_ms,
                                offline_too=True,
                            )
                        )
                        plain_runs.append(
                            await visit(
                                browser,
                                plain_base + "/",
                                kbps=args.kbps,
                                latency_ms=args.latency_ms,
                                offline_too=True,
                            )
                        )
                    await browser.close()
            finally:
                server.terminate()
                server.wait(timeout=10)
        plain.should_exit = True

    def summary(runs: list[dict[str, Any]]) -> tuple[float | None, float | None, float | None]:
        return (
            median([r["wire"] for r in runs]),
            median([r["online_ms"] for r in runs]),
            median([r["offline_ms"] for r in runs]),
        )

    app_wire, app_online, app_offline = summary(app_runs)
    plain_wire, plain_online, plain_offline = summary(plain_runs)
    print(
        f"network: {args.kbps} kbit/s, {args.latency_ms} ms latency; median of {args.rounds} fresh profiles"
    )
    print(f"first-load JS: {files} files, {raw / 1024:7.1f} KiB raw, {gz / 1024:7.1f} KiB gzipped")
    print(f"{'':24}{'app':>14}{'plain page':>14}{'ratio':>10}")
    print(
        f"{'bytes on the wire':24}{(app_wire or 0) / 1024:10.1f} KiB{(plain_wire or 0) / 1024:10.1f} KiB"
        f"{(app_wire or 0) / (plain_wire or 1):10.1f}"
    )
    ratio = f"{app_online / plain_online:10.1f}" if app_online and plain_online else f"{'—':>10}"
    print(f"{'first render online':24}{fmt_ms(app_online):>14}{fmt_ms(plain_online):>14}{ratio}")
    print(
        f"{'first render offline':24}{fmt_ms(app_offline):>14}{fmt_ms(plain_offline):>14}{'—':>10}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kbps", type=int, default=1600)
    parser.add_argument("--latency-ms", type=int, default=150)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
