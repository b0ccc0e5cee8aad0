"""Our appointments to the HIS as SIU^S12 (booked), S14 (moved), S15 (cancelled), S26 (no-show),
and each performed session as DFT^P03 (执行确费), so the HIS bills what the bedside confirmed.

Two steps, each its own transaction, both safe to run in several processes:

1. `queue_appointment_changes`: appointments whose `version` is newer than what
   `hl7_appointment_link` says we reported become rows of `hl7_outbound` (the outbox),
   and the link moves to that version in the same transaction. Deriving the messages from
   the appointment's state, rather than hooking every code path that changes it, means a
   booking made by GraphQL, PAD sync, the Official Account or the queue is never missed.
2. `deliver_due`: sends pending rows over MLLP in id order. AA marks a row sent; AR marks
   it failed; no answer, a closed connection or AE leaves it pending with a growing delay.
   A later message about the same appointment waits for the earlier one, so the HIS
   never sees a cancellation before the booking. Nothing is lost while the HIS is down.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta, tzinfo

import hl7
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.domain.patients import name_parts
from api.domain.treatments.records import record_stream
from api.models.audit import AuditEvent
from api.models.base import utcnow
from api.models.hl7 import HL7AppointmentLink, HL7Outbound
from api.models.patients import Patient
from api.models.people import Department, User
from api.models.treatments import (
    Appointment,
    AppointmentStatus,
    TreatmentItem,
    TreatmentOrder,
    TreatmentRecord,
)
from api.services import Services
from integrations.hl7.ack import escape, new_control_id, timestamp
from integrations.hl7.config import HL7Config
from integrations.hl7.mllp import MLLPClient
from integrations.hl7.parse import CHARSETS, declared_charset

log = logging.getLogger("bedside.hl7.outbound")

MAX_ATTEMPTS = 50
# Appointments further in the past than this are history, not something to tell the HIS.
LOOKBACK = timedelta(days=1)
EVENT_REASON = {
    "S12": ("BOOK", "预约"),
    "S14": ("MOVE", "改期"),
    "S15": ("CANCEL", "取消"),
    "S26": ("NOSHOW", "爽约"),
}
FILLER_STATUS = {
    "booked": "Booked",
    "cancelled": "Cancelled",
    "noshow": "Noshow",
    "arrived": "Booked",
    "checked-in": "Started",
    "fulfilled": "Complete",
}


def trigger_for(appointment: Appointment, link: HL7AppointmentLink | None) -> str | None:
    """Which SIU event tells the HIS about this version (None: nothing it needs)."""
    reported = link.reported_status if link else None
    status = appointment.status
    if status == AppointmentStatus.CANCELLED:
        return "S15" if reported not in (None, AppointmentStatus.CANCELLED) else None
    if status == AppointmentStatus.NOSHOW:
        return "S26" if reported not in (None, AppointmentStatus.NOSHOW) else None
    if reported is None:
        return (
            "S12"
            if status
            in (AppointmentStatus.BOOKED, AppointmentStatus.ARRIVED, AppointmentStatus.CHECKED_IN)
            else None
        )
    if link is not None and link.reported_starts_at != appointment.starts_at:
        return "S14"
    return None


def ts(moment: datetime, tz: tzinfo) -> str:
    """DTM in local time with its offset (`20250301093000+0800`), as HIS clocks read."""
    return timestamp(moment, tz)


def segment(name: str, fields: dict[int, str]) -> str:
    """One segment from {field number: ER7 value (already escaped)}; gaps are empty."""
    return "|".join([name, *(fields.get(n, "") for n in range(1, max(fields) + 1))])


def msh(config: HL7Config, message_type: str, control_id: str, tz: tzinfo) -> str:
    settings = config.settings
    return "|".join(
        [
            "MSH",
            "^~\\&",  # MSH-1 field separator, MSH-2 encoding characters
            escape(settings.application),  # MSH-3 Sending Application
            escape(settings.facility),  # MSH-4 Sending Facility
            escape(settings.his_application),  # MSH-5 Receiving Application
            escape(settings.his_facility),  # MSH-6 Receiving Facility
            timestamp(None, tz),  # MSH-7 Date/Time of Message
            "",  # MSH-8 Security
            message_type,  # MSH-9 Message Type
            control_id,  # MSH-10 Message Control ID
            "P",  # MSH-11 Processing ID
            "2.5",  # MSH-12 Version ID
            "",  # MSH-13 Sequence Number
            "",  # MSH-14 Continuation Pointer
            "",  # MSH-15 Accept Acknowledgment Type: empty with MSH-16, original mode
            "",  # MSH-16 Application Acknowledgment Type
            "",  # MSH-17 Country Code
            "UNICODE UTF-8",  # MSH-18 Character Set
        ]
    )


def his_item_code(config: HL7Config, item: TreatmentItem) -> str:
    return next(
        (his for his, ours in config.mapping.item_codes.items() if ours == item.code), item.code
    )


def his_ward(config: HL7Config, department: Department | None) -> str:
    if department is None:
        return ""
    return next(
        (his for his, ours in config.mapping.departments.items() if ours == department.code),
        department.code,
    )


def pid_segment(config: HL7Config, patient: Patient) -> str:
    family, given = name_parts(patient.name)
    return segment(
        "PID",
        {
            1: "1",  # PID-1 Set ID
            # PID-3 Patient Identifier List (CX): ID^^^assigning authority^type MR
            3: f"{escape(patient.mrn)}^^^{escape(config.settings.his_facility)}^MR",
            5: f"{escape(family)}^{escape(given)}^^^^^L",  # PID-5 (XPN) family^given, legal
        },
    )


def pv1_segment(config: HL7Config, department: Department | None) -> str:
    # PV1-2 Patient Class (table 0004) O outpatient; PV1-3.1 point of care, the HIS's ward.
    return segment("PV1", {1: "1", 2: "O", 3: escape(his_ward(config, department))})


def siu_message(
    trigger: str,
    appointment: Appointment,
    patient: Patient,
    item: TreatmentItem,
    therapist: User | None,
    link: HL7AppointmentLink | None,
    config: HL7Config,
    control_id: str,
    *,
    tz: tzinfo = UTC,
    order: TreatmentOrder | None = None,
    department: Department | None = None,
) -> str:
    """An SIU message (HL7 v2.5 chapter 10, SIU_S12) for one appointment, UTF-8, `\r` separated."""
    settings = config.settings
    minutes = int((appointment.ends_at - appointment.starts_at).total_seconds() // 60)
    start, end = ts(appointment.starts_at, tz), ts(appointment.ends_at, tz)
    action = "A" if trigger == "S12" else "U"  # segment action code (table 0206)
    event_code, event_text = EVENT_REASON[trigger]
    if trigger == "S15" and appointment.cancel_reason:
        event_text = appointment.cancel_reason
    contact = f"{escape(settings.application)}^{escape(settings.facility)}"
    sch = {
        # SCH-1 Placer Appointment ID: the HIS's, when it booked
        1: f"{escape(link.his_appointment_id)}^{escape(settings.his_application)}"
        if link and link.his_appointment_id
        else "",
        2: f"{appointment.id}^{escape(settings.application)}",  # SCH-2 Filler Appointment ID
        6: f"{event_code}^{escape(event_text)}",  # SCH-6 Event Reason (CE)
        9: str(minutes),  # SCH-9 Appointment Duration
        10: "min",  # SCH-10 Appointment Duration Units
        11: f"^^^{start}^{end}",  # SCH-11 Appointment Timing Quantity (TQ.4 start, TQ.5 end)
        16: contact,  # SCH-16 Filler Contact Person (required)
        20: contact,  # SCH-20 Entered By Person (required)
        25: FILLER_STATUS.get(appointment.status, "Booked"),  # SCH-25 Filler Status Code
    }
    if order is not None and order.his_order_no:
        # SCH-26 Placer Order Number (EI): the HIS order the appointment is for
        sch[26] = f"{escape(order.his_order_no)}^{escape(settings.his_application)}"
    segments = [
        msh(config, f"SIU^{trigger}^SIU_S12", control_id, tz),
        segment("SCH", sch),
        # TQ1-7 Start date/time, TQ1-8 End date/time
        segment("TQ1", {1: "1", 7: start, 8: end}),
        pid_segment(config, patient),
        pv1_segment(config, department),
        segment("RGS", {1: "1", 2: action}),  # RGS-1 Set ID, RGS-2 Segment Action Code
        segment(
            "AIS",
            {
                1: "1",  # AIS-1 Set ID
                2: action,  # AIS-2 Segment Action Code
                # AIS-3 Universal Service Identifier (CE): code^text^coding system (L local)
                3: f"{escape(his_item_code(config, item))}^{escape(item.name)}^L",
                4: start,  # AIS-4 Start Date/Time
                7: str(minutes),  # AIS-7 Duration
                8: "min",  # AIS-8 Duration Units
            },
        ),
    ]
    if appointment.room:
        segments += [
            segment("RGS", {1: "2", 2: "A"}),
            # AIL-3 Location Resource ID (PL, point of care), AIL-6 Start Date/Time
            segment("AIL", {1: "1", 2: action, 3: escape(appointment.room), 6: start}),
        ]
    if therapist is not None:
        family, given = name_parts(therapist.display_name)
        segments += [
            segment("RGS", {1: "3", 2: "A"}),
            # AIP-3 Personnel Resource ID (XCN: id^family^given), AIP-6 Start Date/Time
            segment(
                "AIP",
                {
                    1: "1",
                    2: action,
                    3: f"{escape(therapist.username)}^{escape(family)}^{escape(given)}",
                    6: start,
                },
            ),
        ]
    return "\r".join(segments) + "\r"


def dft_message(
    record: TreatmentRecord,
    order: TreatmentOrder,
    patient: Patient,
    item: TreatmentItem,
    therapist: User | None,
    department: Department | None,
    session_no: int,
    config: HL7Config,
    control_id: str,
    *,
    tz: tzinfo = UTC,
) -> str:
    """DFT^P03 (HL7 v2.5 §6.4.1) for one performed session (执行确费): one FT1 charge row.

    FT1-6 `CG` (charge), FT1-7 the HIS's item code, FT1-8 "物理治疗 第 3/10 次", FT1-10
    quantity 1, FT1-11 the price when executed, FT1-23 our order id (we fill the order);
    the row's FINANCIAL_COMMON_ORDER ORC-2 is the HIS's placer order number.
    """
    settings = config.settings
    performed = ts(record.archived_at or record.updated_at, tz)
    progress = f"第 {session_no}/{order.sessions} 次"
    amount = f"{record.price_cents // 100}.{record.price_cents % 100:02d}"
    performer = ""
    if therapist is not None:
        family, given = name_parts(therapist.display_name)
        performer = f"{escape(therapist.username)}^{escape(family)}^{escape(given)}"
    segments = [
        msh(config, "DFT^P03^DFT_P03", control_id, tz),
        segment("EVN", {1: "P03", 2: performed}),  # EVN-1 Event Type Code, EVN-2 Recorded
        pid_segment(config, patient),
        pv1_segment(config, department),
        segment(
            "FT1",
            {
                1: "1",  # FT1-1 Set ID
                2: f"{record.id}",  # FT1-2 Transaction ID: our record, unique per session
                4: performed,  # FT1-4 Transaction Date (DR: the range start)
                5: performed,  # FT1-5 Transaction Posting Date
                6: "CG",  # FT1-6 Transaction Type (table 0017): charge
                # FT1-7 Transaction Code (CE): the HIS's charge item
                7: f"{escape(his_item_code(config, item))}^{escape(item.name)}^L",
                8: escape(f"{item.name} {progress}"),  # FT1-8 Transaction Description
                10: "1",  # FT1-10 Transaction Quantity
                11: f"{amount}&CNY",  # FT1-11 Transaction Amount - Extended (CP: MO amount&currency)
                13: escape(his_ward(config, department)),  # FT1-13 Department Code (CE)
                20: performer,  # FT1-20 Performed By Code (XCN)
                23: f"{order.id}^{escape(settings.application)}",  # FT1-23 Filler Order Number
            },
        ),
        segment("NTE", {1: "1", 3: escape(progress)}),  # NTE-3 Comment: the session
        segment(
            "ORC",
            {
                1: "SC",  # ORC-1 Order Control: status changed (a session performed)
                # ORC-2 Placer Order Number (EI), ORC-3 Filler Order Number
                2: f"{escape(order.his_order_no or '')}^{escape(settings.his_application)}"
                if order.his_order_no
                else "",
                3: f"{order.id}^{escape(settings.application)}",
                # ORC-5 Order Status (table 0038): CM complete after the last session
                5: "CM" if session_no >= order.sessions else "IP",
            },
        ),
    ]
    return "\r".join(segments) + "\r"


def record_lines(
    record: TreatmentRecord,
    order: TreatmentOrder,
    item: TreatmentItem,
    therapist: User | None,
    session_no: int,
    tz: tzinfo,
) -> list[str]:
    """The bedside record as the lines of a text document, labels as the item names them."""
    performed = (record.archived_at or record.updated_at).astimezone(tz)
    lines = [
        f"{item.name} 第 {session_no}/{order.sessions} 次",
        f"执行时间 / performed: {performed:%Y-%m-%d %H:%M}",
    ]
    if therapist is not None:
        lines.append(f"治疗师 / therapist: {therapist.display_name or therapist.username}")
    labels = {f.get("name"): f.get("label") or f.get("name") for f in item.record_template or []}
    for key, value in (record.data or {}).items():
        lines.append(f"{labels.get(key, key)}: {value}")
    return lines


def record_document_message(
    kind: str,
    record: TreatmentRecord,
    order: TreatmentOrder,
    patient: Patient,
    item: TreatmentItem,
    therapist: User | None,
    department: Department | None,
    session_no: int,
    config: HL7Config,
    control_id: str,
    *,
    tz: tzinfo = UTC,
) -> str:
    """The archived record for the EMR (电子病历): MDM^T02 (a document, HL7 v2.5 §9.6.2)
    or ORU^R01 (a result, §7.3.1), the record's lines as TX observations."""
    settings = config.settings
    performed = ts(record.archived_at or record.updated_at, tz)
    lines = record_lines(record, order, item, therapist, session_no, tz)
    author = ""
    if therapist is not None:
        family, given = name_parts(therapist.display_name)
        author = f"{escape(therapist.username)}^{escape(family)}^{escape(given)}"
    placer = (
        f"{escape(order.his_order_no)}^{escape(settings.his_application)}"
        if order.his_order_no
        else ""
    )
    observations = [
        segment(
            "OBX",
            {
                1: str(n),  # OBX-1 Set ID
                2: "TX",  # OBX-2 Value Type: text
                # OBX-3 Observation Identifier: our record, coded locally
                3: "BEDSIDE-REC^床旁治疗记录^L",
                4: str(n),  # OBX-4 Observation Sub-ID: the line
                5: escape(line),  # OBX-5 Observation Value
                11: "F",  # OBX-11 Observation Result Status: final
                14: performed,  # OBX-14 Date/Time of the Observation
                16: author,  # OBX-16 Responsible Observer
            },
        )
        for n, line in enumerate(lines, start=1)
    ]
    head = [
        pid_segment(config, patient),
        pv1_segment(config, department),
    ]
    if kind == "oru":
        body = [
            msh(config, "ORU^R01^ORU_R01", control_id, tz),
            *head,
            # ORC-1 RE: observations to follow; ORC-2 placer (HIS), ORC-3 filler (ours)
            segment("ORC", {1: "RE", 2: placer, 3: f"{record.id}^{escape(settings.application)}"}),
            segment(
                "OBR",
                {
                    1: "1",  # OBR-1 Set ID
                    2: placer,  # OBR-2 Placer Order Number
                    3: f"{record.id}^{escape(settings.application)}",  # OBR-3 Filler Order Number
                    # OBR-4 Universal Service Identifier: the item, in the HIS's code
                    4: f"{escape(his_item_code(config, item))}^{escape(item.name)}^L",
                    7: performed,  # OBR-7 Observation Date/Time
                    25: "F",  # OBR-25 Result Status: final
                },
            ),
            *observations,
        ]
    else:
        body = [
            msh(config, "MDM^T02^MDM_T02", control_id, tz),
            segment("EVN", {1: "T02", 2: performed}),  # EVN-2 Recorded Date/Time (required)
            *head,
            segment(
                "TXA",
                {
                    1: "1",  # TXA-1 Set ID
                    2: "PN",  # TXA-2 Document Type (table 0270): progress note
                    3: "TX",  # TXA-3 Document Content Presentation (table 0191): text
                    4: performed,  # TXA-4 Activity Date/Time
                    5: author,  # TXA-5 Primary Activity Provider
                    # TXA-12 Unique Document Number (required): our record
                    12: f"{record.id}^{escape(settings.application)}",
                    14: placer,  # TXA-14 Placer Order Number
                    17: "AU",  # TXA-17 Document Completion Status (table 0271): authenticated
                },
            ),
            *observations,
        ]
    return "\r".join(body) + "\r"


async def queue_appointment_changes(
    session: AsyncSession,
    config: HL7Config,
    *,
    now: datetime | None = None,
    limit: int = 500,
    tz: tzinfo = UTC,
) -> int:
    """Write outbox rows for appointments changed since we last reported them."""
    now = now or utcnow()
    stmt = (
        sa.select(Appointment, HL7AppointmentLink)
        .outerjoin(HL7AppointmentLink, HL7AppointmentLink.appointment_id == Appointment.id)
        .where(
            sa.or_(
                HL7AppointmentLink.appointment_id.is_(None),
                HL7AppointmentLink.reported_version < Appointment.version,
            ),
            Appointment.starts_at >= now - LOOKBACK,
            Appointment.deleted_at.is_(None),
        )
        .order_by(Appointment.updated_at, Appointment.id)
        .limit(limit)
    )
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        stmt = stmt.with_for_update(of=Appointment, skip_locked=True)
    queued = 0
    for appointment, link in (await session.execute(stmt)).all():
        trigger = trigger_for(appointment, link)
        if trigger is not None:
            patient = await session.get(Patient, appointment.patient_id)
            item = await session.get(TreatmentItem, appointment.item_id)
            therapist = (
                await session.get(User, appointment.therapist_id)
                if appointment.therapist_id
                else None
            )
            assert patient is not None and item is not None
            order = (
                await session.get(TreatmentOrder, appointment.order_id)
                if appointment.order_id
                else None
            )
            department = (
                await session.get(Department, patient.department_id)
                if patient.department_id
                else None
            )
            control_id = new_control_id()
            session.add(
                HL7Outbound(
                    control_id=control_id,
                    message_type=f"SIU^{trigger}",
                    subject_id=appointment.id,
                    body=siu_message(
                        trigger,
                        appointment,
                        patient,
                        item,
                        therapist,
                        link,
                        config,
                        control_id,
                        tz=tz,
                        order=order,
                        department=department,
                    ),
                    next_attempt_at=now,
                )
            )
            queued += 1
        if link is None:
            link = HL7AppointmentLink(appointment_id=appointment.id)  # type: ignore[arg-type]
            session.add(link)
        link.reported_version = appointment.version
        link.reported_status = appointment.status
        link.reported_starts_at = appointment.starts_at
        link.updated_at = now
    await session.flush()
    return queued


RECORD_SUBJECT = "treatment_record"
DOCUMENT_SUBJECT = "treatment_record_document"


async def session_number(session: AsyncSession, record: TreatmentRecord) -> tuple[int, int]:
    """(order id, which session of it) the archive counted, from the record's history."""
    assert record.id is not None
    data = (
        await session.execute(
            sa.select(AuditEvent.data).where(
                AuditEvent.stream == record_stream(record.id), AuditEvent.action == "archived"
            )
        )
    ).scalar_one_or_none() or {}
    return int(data.get("order_id") or record.order_id), int(data.get("used_sessions") or 0)


async def queue_performed_sessions(
    session: AsyncSession,
    config: HL7Config,
    *,
    now: datetime | None = None,
    limit: int = 500,
    tz: tzinfo = UTC,
) -> int:
    """A DFT^P03 charge for every session archived since we last looked (执行确费), and the
    record itself for the EMR (MDM^T02 or ORU^R01, `send_records`), so the bedside work is
    not missing from the medical record.

    A record is reported once: its outbox row (subject `treatment_record`) is the mark.
    """
    if not config.settings.send_charges and config.settings.send_records == "none":
        return 0
    now = now or utcnow()
    reported = (
        sa.select(HL7Outbound.id)
        .where(
            HL7Outbound.subject_type.in_([RECORD_SUBJECT, DOCUMENT_SUBJECT]),
            HL7Outbound.subject_id == TreatmentRecord.id,
        )
        .exists()
    )
    stmt = (
        sa.select(TreatmentRecord)
        .where(
            TreatmentRecord.status == "archived",
            TreatmentRecord.archived_at >= now - LOOKBACK,
            TreatmentRecord.deleted_at.is_(None),
            ~reported,
        )
        .order_by(TreatmentRecord.archived_at, TreatmentRecord.id)
        .limit(limit)
    )
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        stmt = stmt.with_for_update(of=TreatmentRecord, skip_locked=True)
    queued = 0
    for record in (await session.execute(stmt)).scalars().all():
        order_id, number = await session_number(session, record)
        order = await session.get(TreatmentOrder, order_id)
        patient = await session.get(Patient, record.patient_id)
        item = await session.get(TreatmentItem, record.item_id)
        assert order is not None and patient is not None and item is not None
        therapist = await session.get(User, record.therapist_id) if record.therapist_id else None
        department_id = record.department_id or patient.department_id
        department = await session.get(Department, department_id) if department_id else None
        if config.settings.send_charges:
            control_id = new_control_id()
            session.add(
                HL7Outbound(
                    control_id=control_id,
                    message_type="DFT^P03",
                    subject_type=RECORD_SUBJECT,
                    subject_id=record.id,
                    body=dft_message(
                        record,
                        order,
                        patient,
                        item,
                        therapist,
                        department,
                        number or order.used_sessions,
                        config,
                        control_id,
                        tz=tz,
                    ),
                    next_attempt_at=now,
                )
            )
            queued += 1
        if config.settings.send_records in ("mdm", "oru"):
            document_id = new_control_id()
            kind = config.settings.send_records
            session.add(
                HL7Outbound(
                    control_id=document_id,
                    message_type="MDM^T02" if kind == "mdm" else "ORU^R01",
                    subject_type=DOCUMENT_SUBJECT,
                    subject_id=record.id,
                    body=record_document_message(
                        kind,
                        record,
                        order,
                        patient,
                        item,
                        therapist,
                        department,
                        number or order.used_sessions,
                        config,
                        document_id,
                        tz=tz,
                    ),
                    next_attempt_at=now,
                )
            )
            queued += 1
    await session.flush()
    return queued


def retry_delay(attempts: int, config: HL7Config) -> timedelta:
    return timedelta(seconds=min(2 ** min(attempts, 20), config.settings.retry_max_seconds))


def read_reply(reply: bytes) -> tuple[str, str, str]:
    """(MSA-1, MSA-2, MSA-3) of the HIS's answer, decoded by the charset its MSH-18 names."""
    codec = CHARSETS.get(declared_charset(reply)) or "utf-8"
    text = reply.decode(codec, errors="replace").replace("\r\n", "\r").replace("\n", "\r")
    message = hl7.parse(text)
    msa = message.segment("MSA")
    control_id = str(msa[2]) if len(msa) > 2 else ""
    return str(msa[1]), control_id, (message.unescape(str(msa[3])) if len(msa) > 3 else "")


async def deliver_due(
    services: Services,
    config: HL7Config,
    *,
    now: datetime | None = None,
    client: MLLPClient | None = None,
) -> dict[str, int]:
    """Send what is due; returns counts of sent, failed (refused) and deferred messages."""
    settings = config.settings
    counts = {"sent": 0, "failed": 0, "deferred": 0}
    if not settings.his_host or not settings.his_port:
        return counts
    now = now or utcnow()
    own_client = client is None
    client = client or MLLPClient(
        settings.his_host, settings.his_port, timeout=settings.send_timeout_seconds
    )
    try:
        for _ in range(settings.send_batch):
            async with services.db.transaction() as session:
                row = await next_due(session, now)
                if row is None:
                    break
                try:
                    code, answered, text = read_reply(await client.send(row.body.encode("utf-8")))
                except (OSError, TimeoutError, ConnectionError, KeyError, IndexError) as exc:
                    code, answered, text = "", "", f"{type(exc).__name__}: {exc}"[:500]
                if code and answered != row.control_id:
                    # MSA-2 names another message: a stale answer, not this one's. The
                    # connection is out of step; start a fresh one and send again later.
                    await client.close()
                    code = ""
                    text = f"MSA-2 {answered[:20]!r} does not answer {row.control_id}"
                row.attempts += 1
                if code in ("AA", "CA"):
                    row.status, row.sent_at, row.last_error = "sent", utcnow(), None
                    counts["sent"] += 1
                elif code in ("AR", "CR") or row.attempts >= MAX_ATTEMPTS:
                    row.status, row.last_error = "failed", (text or f"refused: {code}")[:500]
                    counts["failed"] += 1
                    log.warning(
                        "hl7 outbound refused",
                        extra={"fields": {"control_id": row.control_id, "code": code}},
                    )
                else:
                    row.last_error = (text or f"answered {code}")[:500]
                    row.next_attempt_at = now + retry_delay(row.attempts, config)
                    counts["deferred"] += 1
                    # The HIS is down or unhappy: the rest of the queue waits for the next round.
                    break
    finally:
        if own_client:
            await client.close()
    return counts


async def next_due(session: AsyncSession, now: datetime) -> HL7Outbound | None:
    """The oldest due row whose appointment has no earlier message still waiting."""
    earlier = sa.orm.aliased(HL7Outbound)
    blocked = (
        sa.select(earlier.id)
        .where(
            earlier.subject_type == HL7Outbound.subject_type,
            earlier.subject_id == HL7Outbound.subject_id,
            earlier.id < HL7Outbound.id,
            earlier.status == "pending",
        )
        .exists()
    )
    stmt = (
        sa.select(HL7Outbound)
        .where(HL7Outbound.status == "pending", HL7Outbound.next_attempt_at <= now, ~blocked)
        .order_by(HL7Outbound.id)
        .limit(1)
    )
    if session.bind.dialect.name == "postgresql":  # type: ignore[union-attr]
        stmt = stmt.with_for_update(skip_locked=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def sync_once(
    services: Services, config: HL7Config, *, now: datetime | None = None
) -> dict[str, int]:
    if not config.settings.his_host or not config.settings.his_port:
        return {"queued": 0}  # no HIS endpoint configured: nothing is queued for nobody
    tz = services.settings.tz
    async with services.db.transaction() as session:
        queued = await queue_appointment_changes(session, config, now=now, tz=tz)
        queued += await queue_performed_sessions(session, config, now=now, tz=tz)
    return {"queued": queued, **await deliver_due(services, config, now=now)}


async def run_sender(services: Services, config: HL7Config, *, interval: float = 5.0) -> None:
    """The loop beside the listener: queue changes, deliver, sleep; errors never end it."""
    while True:
        try:
            counts = await sync_once(services, config)
            if any(counts.values()):
                log.info("hl7 outbound", extra={"fields": counts})
        except Exception:
            log.exception("hl7 outbound round failed")
        await asyncio.sleep(interval)
