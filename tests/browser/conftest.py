"""Browser end-to-end fixtures: the real server in a subprocess over the test database
with the demo hospital, and Debian's Chromium driven by Playwright.

The server runs `api.asgi:app` under uvicorn on a free 127.0.0.1 port with the same
settings as the rest of the suite, so the tests see exactly what a user would.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.exc import DBAPIError

from api.db import Database
from api.demo import seed_demo
from api.services import Services
from api.settings import Settings
from tests.conftest import REQUIRE_SERVICES, truncate_all

ROOT = Path(__file__).resolve().parents[2]
PWA_DIST = ROOT / "pwa" / "dist"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 390, "height": 844}
PAD = {"width": 1280, "height": 800}

pytestmark = pytest.mark.browser


def _missing() -> str | None:
    if not (PWA_DIST / "index.html").exists():
        return "the PWA is not built (run `make pwa`)"
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    return None


@pytest.fixture(scope="session")
def browser_prerequisites() -> None:
    reason = _missing()
    if reason:
        if REQUIRE_SERVICES:
            pytest.fail(reason)
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "BEDSIDE_DATABASE_URL": settings.database_url,
        "BEDSIDE_SECRET_KEY": settings.effective_secret_key,
        "BEDSIDE_DATA_DIR": str(settings.data_dir),
        "BEDSIDE_ARGON2_TIME_COST": "1",
        "BEDSIDE_ARGON2_MEMORY_COST_KIB": "1024",
        "BEDSIDE_ARGON2_PARALLELISM": "1",
        "BEDSIDE_LOG_JSON": "false",
        "BEDSIDE_LOG_LEVEL": "WARNING",
    }


@contextmanager
def running_server(env: dict[str, str], port: int | None = None) -> Iterator[str]:
    """`api.asgi:app` under uvicorn with `env`, until the block ends; yields its base URL."""
    port = port or _free_port()
    process = subprocess.Popen(
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
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        with httpx.Client() as client:
            while True:
                if process.poll() is not None:
                    pytest.fail(f"the server exited with {process.returncode}")
                try:
                    if client.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("the server did not start within 30 s")
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="package")
def live_server(
    browser_prerequisites: None, settings: Settings, database: Database
) -> Iterator[str]:
    """The real server on a free port, for the browser tests.

    It delivers notifications in process, sweeping the shared test database at the real
    time: it must stop when the browser tests end, or it would deliver beside the later
    tests that drive every sweep at an injected time (a reminder would go out early)."""
    env = server_env(settings)
    env.pop("BEDSIDE_REDIS_URL", None)
    with running_server(env) as base:
        yield base


@pytest.fixture
async def hospital(live_server: str, settings: Settings, database: Database) -> Services:
    """A fresh demo hospital in the database the live server uses."""
    # The server may still be finishing the previous test's work (in-process notification
    # jobs); TRUNCATE can then lose a deadlock against it. Try again shortly.
    for attempt in range(5):
        try:
            await truncate_all(database)
            break
        except DBAPIError as exc:
            if "deadlock" not in str(exc).lower() or attempt == 4:
                raise
            await asyncio.sleep(0.5)
    services = Services.build(settings, db=database)
    async with database.transaction() as session:
        await seed_demo(session, services)
    return services


@pytest.fixture(scope="session")
async def browser(browser_prerequisites: None) -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def new_context(browser: Any, live_server: str) -> AsyncIterator[Any]:
    """`await new_context(viewport=PHONE)` → a fresh profile (own IndexedDB and service worker)."""
    contexts: list[Any] = []

    async def make(**options: Any) -> Any:
        options.setdefault("viewport", PHONE)
        options.setdefault("locale", "zh-CN")
        options.setdefault("timezone_id", "Asia/Shanghai")
        context = await browser.new_context(base_url=live_server, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        await context.close()


async def sign_in(page: Any, username: str, password: str = "bedside-demo") -> None:
    await page.goto("/login")
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill(password)
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_selector("[data-testid=hello]")


# `BEDSIDE_SCREENSHOTS=docs/screenshots pytest tests/browser/...` regenerates the journeys'
# screenshots; without it the tests take none.
SCREENSHOTS = os.environ.get("BEDSIDE_SCREENSHOTS")


async def screenshot(page: Any, name: str, *, full_page: bool = False) -> None:
    if SCREENSHOTS:
        target = Path(SCREENSHOTS)
        await asyncio.to_thread(target.mkdir, parents=True, exist_ok=True)
        await page.screenshot(path=str(target / f"{name}.png"), full_page=full_page)


async def wait_for_service_worker(page: Any) -> None:
    """Until the service worker has precached the shell and controls the page."""
    ready = await page.evaluate(
        "Promise.race([navigator.serviceWorker.ready.then(() => true), new Promise(r => setTimeout(() => r(false), 20000))])"
    )
    assert ready, "the service worker did not activate"
    if not await page.evaluate("!!navigator.serviceWorker.controller"):
        await page.reload()
        await page.wait_for_function("!!navigator.serviceWorker.controller")
