"""Screenshots of the PWA's main screens at phone (390×844) and PAD (1280×800) sizes.

    .venv/bin/python tools/screenshots.py [--out docs/screenshots] [--base http://127.0.0.1:8000]

Without --base it starts its own server on a fresh embedded (SQLite) database with the
demo hospital, sets the scenes through the public API (a grade-4 application, booked
appointments), and drives Debian's Chromium with Playwright, as the browser tests do.
Needs the PWA built (`make pwa`) and a CJK font (fonts-wqy-microhei) for the Chinese text.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.scenes import book_physio, submit_grade4_application  # noqa: E402

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


def start_server(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "BEDSIDE_DATABASE_URL": f"sqlite+aiosqlite:///{data_dir / 'bedside.db'}",
        "BEDSIDE_DATA_DIR": str(data_dir),
        "BEDSIDE_ARGON2_TIME_COST": "1",
        "BEDSIDE_ARGON2_MEMORY_COST_KIB": "1024",
        "BEDSIDE_ARGON2_PARALLELISM": "1",
        "BEDSIDE_LOG_LEVEL": "WARNING",
    }
    env.pop("BEDSIDE_REDIS_URL", None)
    bedside = [sys.executable, "-m", "api.cli"]
    subprocess.run([*bedside, "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run([*bedside, "seed-demo"], cwd=ROOT, env=env, check=True, capture_output=True)
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
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("the server did not start")


async def sign_in(page: Any, username: str) -> None:
    await page.goto("/login")
    await page.get_by_label("用户名").fill(username)
    await page.get_by_label("密码").fill("bedside-demo")
    await page.get_by_role("button", name="登录").click()
    await page.wait_for_url(lambda url: "/login" not in url)
    await page.wait_for_timeout(2300)  # let the welcome toast pass


async def shoot(page: Any, out: Path, name: str, wait_for: str | None = None) -> None:
    if wait_for:
        await page.wait_for_selector(wait_for)
    await page.wait_for_timeout(700)
    await page.screenshot(path=str(out / f"{name}.png"))
    print("wrote", out / f"{name}.png")


async def run(base: str, out: Path) -> None:
    from playwright.async_api import async_playwright

    instance = await submit_grade4_application(base)
    chief_task = instance["tasks"][0]["id"]
    day, slot_id, ids = await book_physio(base, ["陈志强", "周建国"])

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)

        async def context(viewport: dict[str, int]) -> Any:
            ctx = await browser.new_context(
                base_url=base,
                viewport=viewport,
                locale="zh-CN",
                timezone_id="Asia/Shanghai",
                device_scale_factor=1,
            )
            ctx.set_default_timeout(15_000)
            return ctx

        phone = await (await context(PHONE)).new_page()
        await phone.goto("/login")
        await shoot(phone, out, "phone-login", "#login-username")
        await sign_in(phone, "chief.wang")
        await shoot(phone, out, "phone-home-chief", "[data-testid=hello]")
        await phone.goto("/tasks")
        await shoot(phone, out, "phone-approver-tasks", f"[data-testid=task-{chief_task}]")
        await phone.goto(f"/tasks/{chief_task}")
        await shoot(phone, out, "phone-approver-task-detail", "[data-testid=approve]")
        await phone.goto("/notices")
        await shoot(phone, out, "phone-chief-notices", "[data-testid=notices]")

        patient = await (await context(PHONE)).new_page()
        await sign_in(patient, "patient.zhou")
        await shoot(patient, out, "phone-patient-orders", "[data-testid=orders]")
        await patient.get_by_role("button", name="预约").first.click()
        await shoot(patient, out, "phone-patient-slots", "[data-testid=slots] .slot")

        pad = await (await context(PAD)).new_page()
        await sign_in(pad, "pt.sun")
        await shoot(pad, out, "pad-home-therapist", "[data-testid=hello]")
        await pad.goto(f"/worklist?date={day}")
        await shoot(pad, out, "pad-therapist-worklist", f"[data-testid=appointment-{ids[0]}]")
        await pad.goto(f"/worklist/{ids[0]}/record")
        await pad.wait_for_selector("[data-testid=signature-pad]")
        await pad.get_by_role("radio", name="中频").click()
        await pad.get_by_label("时长(分钟)").fill("30")
        box = await (await pad.query_selector("[data-testid=signature-pad]")).bounding_box()
        await pad.mouse.move(box["x"] + 40, box["y"] + 90)
        await pad.mouse.down()
        for i in range(1, 30):
            await pad.mouse.move(box["x"] + 40 + i * 9, box["y"] + 90 + ((i % 6) - 3) * 12)
        await pad.mouse.up()
        await shoot(pad, out, "pad-therapist-bedside-record")

        affairs = await (await context(PAD)).new_page()
        await sign_in(affairs, "ma.zhao")
        await affairs.goto("/dashboard")
        await shoot(affairs, out, "pad-affairs-dashboard", "[data-testid=dashboard] canvas")
        await affairs.goto("/rankings")
        await shoot(affairs, out, "pad-chief-rankings", "[data-testid=rankings]")
        await browser.close()
    del slot_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument(
        "--base", help="a running server with the demo hospital (default: start one)"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.base:
        asyncio.run(run(args.base, args.out))
        return
    with tempfile.TemporaryDirectory(prefix="bedside-shots-") as tmp:
        process, base = start_server(Path(tmp))
        try:
            asyncio.run(run(base, args.out))
        finally:
            process.terminate()
            process.wait(timeout=10)


if __name__ == "__main__":
    main()
