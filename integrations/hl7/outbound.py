"""Our appointments to the HIS as SIU^S12 (booked), S14 (moved), S15 (cancelled), S26 (no-show).

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
from datetime import datetime, timedelta

import hl7
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.models.base import utcnow
from api.models.hl7 import HL7AppointmentLink, HL7Outbound
from api.models.patients import Patient
from api.models.people import User
from api.models.treatments import Appointment, AppointmentStatus, TreatmentItem
from api.services import Services
from integrations.hl7.ack import escape, new_control_id, timestamp
from integrations.hl7.config import HL7Config
from integrations.hl7.mllp import MLLPClient

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


def ts(moment: datetime) -> str:
    return timestamp(moment)


def siu_message(
    trigger: str,
    appointment: Appointment,
    patient: Patient,
    item: TreatmentItem,
    therapist: User | None,
    link: HL7AppointmentLink | None,
    config: HL7Config,
    control_id: str,
) -> str:
    """An SIU message (HL7 v2.5 chapter 10) for one appointment, UTF-8, `\r` separated."""
    settings = config.settings
    his_code = next(
        (his for his, ours in config.mapping.item_codes.items() if ours == item.code), item.code
    )
    minutes = int((appointment.ends_at - appointment.starts_at).total_seconds() // 60)
    filler = f"{appointment.id}^{escape(settings.application)}"
    placer = (
        f"{escape(link.his_appointment_id)}^{escape(settings.his_application)}"
        if link and link.his_appointment_id
        else ""
    )
    event_code, event_text = EVENT_REASON[trigger]
    contact = f"{escape(settings.application)}^{escape(settings.facility)}"
    if trigger == "S15" and appointment.cancel_reason:
        event_text = appointment.cancel_reason
    segments = [
        "|".join(
            [
                "MSH",
                "^~\\&",
                escape(settings.application),
                escape(settings.facility),
                escape(settings.his_application),
                escape(settings.his_facility),
                timestamp(),
                "",
                f"SIU^{trigger}^SIU_S12",
                control_id,
                "P",
                "2.5",
                "",
                "",
                "AL",
                "NE",
                "",
                "UNICODE UTF-8",
            ]
        ),
        "|".join(
            [
                "SCH",
                placer,
                filler,
                "",
                "",
                "",
                f"{event_code}^{escape(event_text)}",
                "",
                "",
                str(minutes),
                "min",
                f"^^^{ts(appointment.starts_at)}^{ts(appointment.ends_at)}",
                # SCH-16 filler contact and SCH-20 entered by: required; the department desk.
                "",
                "",
                "",
                "",
                contact,
                "",
                "",
                "",
                contact,
                "",
                "",
                "",
                "",
                FILLER_STATUS.get(appointment.status, "Booked"),
            ]
        ),
        "|".join(
            ["TQ1", "1", "", "", "", "", "", ts(appointment.starts_at), ts(appointment.ends_at)]
        ),
        "|".join(
            [
                "PID",
                "1",
                "",
                f"{escape(patient.mrn)}^^^{escape(settings.his_facility)}^MR",
                "",
                escape(patient.name),
            ]
        ),
        "|".join(["RGS", "1", "A" if trigger == "S12" else "U"]),
        "|".join(
            [
                "AIS",
                "1",
                "A" if trigger == "S12" else "U",
                f"{escape(his_code)}^{escape(item.name)}",
                ts(appointment.starts_at),
                "",
                "",
                str(minutes),
                "min",
            ]
        ),
    ]
    if appointment.room:
        segments += [
            "|".join(["RGS", "2", "A"]),
            "|".join(
                [
                    "AIL",
                    "1",
                    "A" if trigger == "S12" else "U",
                    f"{escape(appointment.room)}",
                    "",
                    "",
                    ts(appointment.starts_at),
                ]
            ),
        ]
    if therapist is not None:
        segments += [
            "|".join(["RGS", "3", "A"]),
            "|".join(
                [
                    "AIP",
                    "1",
                    "A" if trigger == "S12" else "U",
                    f"{escape(therapist.username)}^{escape(therapist.display_name)}",
                    "",
                    "",
                    ts(appointment.starts_at),
                ]
            ),
        ]
    return "\r".join(segments) + "\r"


async def queue_appointment_changes(
    session: AsyncSession, config: HL7Config, *, now: datetime | None = None, limit: int = 500
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
            control_id = new_control_id()
            session.add(
                HL7Outbound(
                    control_id=control_id,
                    message_type=f"SIU^{trigger}",
                    subject_id=appointment.id,
                    body=siu_message(
                        trigger, appointment, patient, item, therapist, link, config, control_id
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


def retry_delay(attempts: int, config: HL7Config) -> timedelta:
    return timedelta(seconds=min(2 ** min(attempts, 20), config.settings.retry_max_seconds))


def ack_code(reply: bytes) -> tuple[str, str]:
    message = hl7.parse(
        reply.decode("utf-8", errors="replace").replace("\r\n", "\r").replace("\n", "\r")
    )
    msa = message.segment("MSA")
    return str(msa[1]), (message.unescape(str(msa[3])) if len(msa) > 3 else "")


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
                    code, text = ack_code(await client.send(row.body.encode("utf-8")))
                except (OSError, TimeoutError, ConnectionError, KeyError, IndexError) as exc:
                    code, text = "", f"{type(exc).__name__}: {exc}"[:500]
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
    async with services.db.transaction() as session:
        queued = await queue_appointment_changes(session, config, now=now)
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
