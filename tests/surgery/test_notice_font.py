"""The notice embeds WenQuanYi when installed and falls back to the STSong-Light CID font."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from api.domain.surgery import notice

CONTENT = notice.NoticeContent(
    application_no="SS-20250303-000001",
    patient_name="张秀英",
    patient_mrn="P0002",
    procedure_code="50.3",
    procedure_name="肝叶切除术",
    grade=4,
    level="national",
    surgeon="钱医生",
    department="普外科",
    planned_at=datetime(2025, 3, 4, 1, tzinfo=UTC),
    emergency=False,
    anesthesia="全身麻醉",
    diagnosis="原发性肝癌",
    approved_at=datetime(2025, 3, 3, 9, tzinfo=UTC),
)


async def _text(pdf: bytes) -> str:
    proc = await asyncio.create_subprocess_exec(
        "pdftotext", "-", "-", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate(pdf)
    return out.decode()


@pytest.fixture
def fallback_font(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(notice, "CJK_FONT_FILES", (Path("/nonexistent/font.ttc"),))
    notice.cjk_font_name.cache_clear()
    yield
    notice.cjk_font_name.cache_clear()


async def test_embedded_font_when_installed() -> None:
    if not notice.CJK_FONT_FILES[0].exists():
        pytest.skip("fonts-wqy-microhei is not installed (make system-deps)")
    notice.cjk_font_name.cache_clear()
    pdf = notice.render_notice(CONTENT, tz=ZoneInfo("Asia/Shanghai"))
    assert b"FontFile2" in pdf  # the TrueType subset is inside the file
    assert "肝叶切除术" in await _text(pdf) and "2025-03-04 09:00" in await _text(pdf)


async def test_fallback_cid_font(fallback_font) -> None:  # type: ignore[no-untyped-def]
    assert notice.cjk_font_name() == "STSong-Light"
    pdf = notice.render_notice(CONTENT, tz=ZoneInfo("Asia/Shanghai"))
    assert b"STSong-Light" in pdf and "手术审批通知书" in await _text(pdf)


async def test_a_warmed_render_process_renders_the_same_notice() -> None:
    # The served app starts the render process at startup; what it renders afterwards is
    # what rendering in this process gives.
    await notice.warm_render_pool()
    tz = ZoneInfo("Asia/Shanghai")
    pdf = await notice.render_notice_off_loop(CONTENT, tz=tz)
    assert "肝叶切除术" in await _text(pdf)
    assert await _text(pdf) == await _text(notice.render_notice(CONTENT, tz=tz))
