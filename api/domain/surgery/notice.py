"""The 手术审批通知书 (surgery approval notice): a PDF generated on final approval.

Chinese text needs a CJK font embedded in the file. WenQuanYi Micro Hei (Debian package
`fonts-wqy-microhei`) is embedded as a TrueType subset; where it is missing, reportlab's
built-in `STSong-Light` CID font is used (readers supply its glyphs).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, partial
from pathlib import Path
from zoneinfo import ZoneInfo

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

CJK_FONT_FILES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
)
FALLBACK_CID_FONT = "STSong-Light"


@cache
def cjk_font_name() -> str:
    """Register the CJK font once per process and return its name."""
    for path in CJK_FONT_FILES:
        if path.exists():
            pdfmetrics.registerFont(TTFont("BedsideCJK", str(path), subfontIndex=0))
            return "BedsideCJK"
    pdfmetrics.registerFont(UnicodeCIDFont(FALLBACK_CID_FONT))
    return FALLBACK_CID_FONT


@dataclass
class NoticeSignature:
    step: str
    approver: str
    decision: str
    at: datetime


@dataclass
class NoticeContent:
    application_no: str
    patient_name: str
    patient_mrn: str
    procedure_code: str
    procedure_name: str
    grade: int
    level: str
    surgeon: str
    department: str
    planned_at: datetime
    emergency: bool
    anesthesia: str
    diagnosis: str
    approved_at: datetime
    signatures: list[NoticeSignature] = field(default_factory=list)
    override_reason: str | None = None
    chain_hash: str = ""
    hospital: str = "Bedside 医院"


LEVELS = {
    "national": "国家级 National",
    "provincial": "省级 Provincial",
    "hospital": "院级 Hospital",
}
DECISIONS = {"approve": "同意 Approved", "approved": "同意 Approved"}


def render_notice(content: NoticeContent, *, tz: ZoneInfo) -> bytes:
    font = cjk_font_name()
    title = ParagraphStyle("title", fontName=font, fontSize=18, leading=24, alignment=1)
    sub = ParagraphStyle(
        "sub", fontName=font, fontSize=10, leading=14, alignment=1, textColor=colors.grey
    )
    body = ParagraphStyle("body", fontName=font, fontSize=10.5, leading=15)

    def local(value: datetime) -> str:
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")

    def p(text: str) -> Paragraph:
        return Paragraph(text.replace("&", "&amp;").replace("<", "&lt;"), body)

    rows = [
        ("申请编号 Application", content.application_no),
        ("患者 Patient", f"{content.patient_name}（病历号 {content.patient_mrn}）"),
        ("诊断 Diagnosis", content.diagnosis),
        ("拟施手术 Procedure", f"{content.procedure_name}（{content.procedure_code}）"),
        ("手术级别 Grade", f"{content.grade}级手术 · {LEVELS.get(content.level, content.level)}"),
        ("术者 Surgeon", f"{content.surgeon} · {content.department}"),
        ("拟手术时间 Planned", local(content.planned_at)),
        ("麻醉方式 Anesthesia", content.anesthesia),
        ("类型 Type", "急诊手术 Emergency" if content.emergency else "择期手术 Elective"),
        ("批准时间 Approved", local(content.approved_at)),
    ]
    if content.override_reason:
        rows.append(
            (
                "紧急授权例外 Override",
                f"术者无该级别授权，紧急情况下例外放行，待上级确认：{content.override_reason}",
            )
        )
    info = Table([[p(k), p(v)] for k, v in rows], colWidths=[42 * mm, 128 * mm])
    info.setStyle(
        TableStyle(
            [("GRID", (0, 0), (-1, -1), 0.5, colors.grey), ("VALIGN", (0, 0), (-1, -1), "TOP")]
        )
    )

    sign_rows = [[p("审批环节 Step"), p("审批人 Approver"), p("意见 Decision"), p("时间 Time")]]
    sign_rows += [
        [p(s.step), p(s.approver), p(DECISIONS.get(s.decision, s.decision)), p(local(s.at))]
        for s in content.signatures
    ]
    signs = Table(sign_rows, colWidths=[50 * mm, 40 * mm, 35 * mm, 45 * mm])
    signs.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
            ]
        )
    )

    story = [
        Paragraph(content.hospital, sub),
        Paragraph("手术审批通知书", title),
        Paragraph("Surgery Approval Notice", sub),
        Spacer(1, 6 * mm),
        info,
        Spacer(1, 6 * mm),
        Paragraph("审批记录 Approvals", body),
        Spacer(1, 2 * mm),
        signs,
        Spacer(1, 6 * mm),
        Paragraph(f"审批记录存证哈希 Audit chain hash: {content.chain_hash}", sub),
        Paragraph("本通知书由系统在审批通过后自动生成，请同步手术室、麻醉科安排手术。", sub),
    ]
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title="手术审批通知书",
        author=content.hospital,
        subject=content.application_no,
    )
    doc.build(story)
    return buffer.getvalue()


def store_notice(data_dir: Path, relative: str, pdf: bytes) -> str:
    """Write the PDF under the data dir (atomically) and return its sha256."""
    target = (data_dir / relative).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".tmp")
    tmp.write_bytes(pdf)
    tmp.replace(target)
    return hashlib.sha256(pdf).hexdigest()


_render_pool: ProcessPoolExecutor | None = None


def _pool() -> ProcessPoolExecutor:
    global _render_pool
    if _render_pool is None:
        # forkserver: a clean child, not a fork of a process holding database sockets.
        _render_pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("forkserver")
        )
    return _render_pool


async def render_notice_off_loop(content: NoticeContent, *, tz: ZoneInfo) -> bytes:
    """`render_notice` in a worker process. A render takes 15-40 ms of CPU; on the event
    loop it would stall every other request of the process meanwhile. The same bytes
    either way; if the worker process dies, the next render runs here."""
    global _render_pool
    try:
        return await asyncio.get_running_loop().run_in_executor(
            _pool(), partial(render_notice, content, tz=tz)
        )
    except BrokenProcessPool:
        _render_pool = None
        return render_notice(content, tz=tz)


def stop_render_pool() -> None:
    """Stop the render process with the process that started it (a served app's shutdown):
    left running, it outlives a server stopped by a signal."""
    global _render_pool
    pool, _render_pool = _render_pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


async def warm_render_pool() -> None:
    """Start the render process and load its fonts before the first final approval needs
    them: started on demand, the child's imports and fonts took 1-2 s, inside that
    approval's transaction (its instance locked all the while)."""
    global _render_pool
    try:
        await asyncio.get_running_loop().run_in_executor(_pool(), cjk_font_name)
    except BrokenProcessPool:
        _render_pool = None


_PENDING = "surgery_notice_files"


def write_after_commit(session: AsyncSession, data_dir: Path, relative: str, pdf: bytes) -> None:
    """Store the file once the transaction that records it commits (a rolled-back
    approval leaves no file behind; the session is discarded with its pending list)."""
    pending = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = []

        def store_all(_: object) -> None:
            for directory, path, content in session.info.pop(_PENDING, []):
                store_notice(directory, path, content)

        event.listen(session.sync_session, "after_commit", store_all, once=True)
    pending.append((data_dir, relative, pdf))
