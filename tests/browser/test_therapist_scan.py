"""At the bedside the therapist identifies the patient by scanning his wristband with the
PAD's camera (seed 002: 扫描患者腕带), with the network off, and his record opens.

The camera is Chromium's fake capture device playing a Y4M file (the `YUV4MPEG2` format
Chromium's --use-file-for-fake-video-capture reads) of a QR code of the patient's MRN;
the QR matrix is made by ZXing's own encoder (@zxing/library's QRCodeWriter)."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import Image
from playwright.async_api import async_playwright, expect

from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    screenshot,
    sign_in,
    wait_for_service_worker,
)
from tests.browser.test_therapist_journey import PAD, booked

pytestmark = pytest.mark.browser

QR_MATRIX = """
const { QRCodeWriter, BarcodeFormat } = require('@zxing/library');
const m = new QRCodeWriter().encode(process.argv[1], BarcodeFormat.QR_CODE, 0, 0, new Map());
const rows = [];
for (let y = 0; y < m.getHeight(); y++) {
  let row = '';
  for (let x = 0; x < m.getWidth(); x++) row += m.get(x, y) ? '1' : '0';
  rows.push(row);
}
console.log(JSON.stringify(rows));
"""


def qr_frame(text: str, size: tuple[int, int] = (640, 480)) -> Image.Image:
    rows = json.loads(
        subprocess.run(
            ["node", "-e", QR_MATRIX, text],
            cwd=ROOT / "pwa",
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    )
    scale = 300 // (len(rows) + 8)
    side = (len(rows) + 8) * scale  # a quiet zone of four modules each side
    code = Image.new("L", (side, side), 255)
    for y, row in enumerate(rows):
        for x, bit in enumerate(row):
            if bit == "1":
                code.paste(0, ((x + 4) * scale, (y + 4) * scale, (x + 5) * scale, (y + 5) * scale))
    frame = Image.new("L", size, 255)
    frame.paste(code, ((size[0] - side) // 2, (size[1] - side) // 2))
    return frame.convert("RGB")


def write_y4m(image: Image.Image, path: Path, frames: int = 10) -> None:
    """4:2:0 Y'CbCr frames in the YUV4MPEG2 stream format."""
    width, height = image.size
    y, cb, cr = image.convert("YCbCr").split()
    half = (width // 2, height // 2)
    planes = y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + planes)


async def test_scanning_the_wristband_opens_the_patients_record_offline(
    hospital, live_server, tmp_path
) -> None:
    appointment_id = await booked(hospital, live_server, starts_in=timedelta(minutes=5))
    video = tmp_path / "wristband.y4m"
    write_y4m(qr_frame("P0001"), video)  # 周建国's wristband
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                *CHROMIUM_ARGS,
                "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream",
                f"--use-file-for-fake-video-capture={video}",
            ],
        )
        try:
            context = await browser.new_context(
                base_url=live_server,
                viewport=PAD,
                locale="zh-CN",
                timezone_id="Asia/Shanghai",
                permissions=["camera"],
            )
            context.set_default_timeout(10_000)
            page = await context.new_page()
            await sign_in(page, "pt.sun")
            await wait_for_service_worker(page)
            await page.click("[data-testid=tile-worklist]")
            await expect(page.get_by_test_id(f"appointment-{appointment_id}")).to_be_visible()

            await context.set_offline(True)
            await page.click("[data-testid=scan]")
            await expect(page.get_by_text("将腕带或预约回执上的条码对准框内")).to_be_visible()
            await page.wait_for_url(f"**/worklist/{appointment_id}/record", timeout=20_000)
            await expect(page.get_by_text("已识别：周建国")).to_be_visible()
            record = page.get_by_test_id("bedside-record")
            await expect(record).to_contain_text("周建国")
            await expect(page.get_by_test_id("payment-check")).to_contain_text("已缴费")
            await screenshot(page, "pad-therapist-scanned")
        finally:
            await browser.close()
