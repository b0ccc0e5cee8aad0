"""The booking receipt (预约回执单) as a PDF, to print or keep: who, what, when, where, with
whom, how to get there and what to bring.

Only someone who may see the appointment's patient gets it (the patient themself, or the
staff of the patient's department); each copy handed out is an export in the access log.
Rendered with the CJK font of the surgery approval notice.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from reportlab.lib import colors
from reportlab.lib.pagesizes import A5
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor
from api.domain.surgery.notice import cjk_font_name
from api.domain.treatments.access import log_patient_access
from api.domain.treatments.appointments import access_appointment
from api.domain.treatments.common import HOSPITAL_TZ
from api.models.patients import Patient
from api.models.people import User
from api.models.treatments import AppointmentStatus, PaymentStatus, TreatmentItem, TreatmentOrder
from api.texts import split as split_text

STATUS_ZH = {
    AppointmentStatus.BOOKED: "已预约",
    AppointmentStatus.ARRIVED: "已签到",
    AppointmentStatus.CHECKED_IN: "治疗中",
    AppointmentStatus.FULFILLED: "已完成",
    AppointmentStatus.CANCELLED: "已取消",
    AppointmentStatus.NOSHOW: "未到诊",
    AppointmentStatus.WAITLIST: "候补中",
}


@dataclass(frozen=True)
class ReceiptPdf:
    filename: str
    content: bytes


@dataclass(frozen=True)
class _Content:
    receipt_no: str
    status: str
    patient: str
    mrn: str
    item: str
    starts_at: datetime
    ends_at: datetime
    room: str
    therapist: str
    location: str
    notes: str
    unpaid: bool
    hospital: str = "Bedside 医院"


def _zh(text: str) -> str:
    """The Chinese half of a "中文 / English" datum (the whole text when it has no halves)."""
    return split_text(text).zh if text else ""


def _render(content: _Content, tz: ZoneInfo) -> bytes:
    font = cjk_font_name()
    title = ParagraphStyle("title", fontName=font, fontSize=16, leading=22, alignment=1)
    sub = ParagraphStyle(
        "sub", fontName=font, fontSize=9, leading=13, alignment=1, textColor=colors.grey
    )
    body = ParagraphStyle("body", fontName=font, fontSize=10.5, leading=15)

    def p(text: str) -> Paragraph:
        return Paragraph(
            text.replace("&", "&amp;").replace("<", "&lt;").replace("\n", "<br/>"), body
        )

    start, end = content.starts_at.astimezone(tz), content.ends_at.astimezone(tz)
    rows = [
        ("回执号", content.receipt_no),
        ("患者", f"{content.patient}（病历号 {content.mrn}）"),
        ("治疗项目", content.item),
        ("时间", f"{start:%Y年%m月%d日} {start:%H:%M}–{end:%H:%M}"),
        ("治疗室", content.room or "到院后请至分诊台"),
        ("治疗师", content.therapist or "当日安排"),
        ("怎么走", content.location or "请至门诊服务台咨询"),
        ("状态", content.status),
    ]
    if content.unpaid:
        rows.append(("缴费", "尚未缴费，请先缴费后再治疗"))
    if content.notes:
        rows.append(("注意事项", content.notes))
    table = Table([[p(k), p(v)] for k, v in rows], colWidths=[24 * mm, 100 * mm])
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BACKGROUND", (0, 0), (0, -1), colors.whitesmoke),
            ]
        )
    )
    story = [
        Paragraph(content.hospital, sub),
        Paragraph("治疗预约回执单", title),
        Spacer(1, 4 * mm),
        table,
        Spacer(1, 4 * mm),
        Paragraph(
            "请凭本回执按时到达治疗室签到；如需改约或取消，请在公众号“我的预约”中操作。", sub
        ),
    ]
    buffer = io.BytesIO()
    SimpleDocTemplate(
        buffer,
        pagesize=A5,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title="治疗预约回执单",
        author=content.hospital,
        subject=content.receipt_no,
    ).build(story)
    return buffer.getvalue()


async def appointment_receipt_pdf(
    session: AsyncSession, actor: Actor, appointment_id: int, *, tz: ZoneInfo = HOSPITAL_TZ
) -> ReceiptPdf:
    """The receipt of one appointment, for whoever may see its patient (NOT_FOUND alike for
    "not there" and "not yours"); logged as an export."""
    appointment = await access_appointment(session, actor, appointment_id)
    patient = await session.get(Patient, appointment.patient_id)
    item = await session.get(TreatmentItem, appointment.item_id)
    assert patient is not None and item is not None and appointment.id is not None
    order = (
        await session.get(TreatmentOrder, appointment.order_id) if appointment.order_id else None
    )
    therapist = (
        await session.get(User, appointment.therapist_id) if appointment.therapist_id else None
    )
    status = AppointmentStatus(appointment.status)
    content = _Content(
        receipt_no=appointment.receipt_no or f"{appointment.id:06d}",
        status=STATUS_ZH.get(status, str(status)),
        patient=patient.name,
        mrn=patient.mrn,
        item=item.name,
        starts_at=appointment.starts_at,
        ends_at=appointment.ends_at,
        room=appointment.room,
        therapist=therapist.display_name if therapist else "",
        location=_zh(item.location),
        notes=_zh(item.notes),
        unpaid=order is not None and order.payment_status != PaymentStatus.PAID,
    )
    await log_patient_access(
        session,
        actor,
        "appointment_receipt",
        [appointment.patient_id],
        action="export",
        detail={"appointment_id": appointment.id, "receipt_no": content.receipt_no},
    )
    return ReceiptPdf(filename=f"receipt-{content.receipt_no}.pdf", content=_render(content, tz))
