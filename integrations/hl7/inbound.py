"""The inbound pipeline: one frame in, its acknowledgement(s) out, the message applied once.

    frame -> decode + parse -> checks (version, processing id, type) -> transaction:
        replay? -> the stored ACK, byte for byte
        handler -> domain actions -> remember (MSH-3, MSH-10) -> ACK AA -> commit
    a refusal -> rollback, nothing written, the reason in MSA-3 and ERR:
        AE  the content cannot be applied (unknown patient, bad value): fix, then resend
        AR  the message is not for us (version, processing id, type, encoding), or we
            failed (internal error, write conflict): the sender resends it unchanged

Acknowledgement mode (HL7 v2.5 §2.9.2, §2.9.3): with MSH-15 and MSH-16 both empty, the
original mode: one ACK, MSA-1 AA/AE/AR. When the sender fills either, the enhanced mode:
an accept acknowledgement (MSA-1 CA committed, CE commit error, CR rejected) when MSH-15
asks for it, then the application acknowledgement (AA/AE/AR) when MSH-16 asks for it,
both on the same connection. Table 0155: AL always, NE never, ER on error or reject
only, SU on success only; an empty one of the pair counts as AL.

A refused message is not remembered: when the HIS resends it after the cause is fixed
(the patient admitted, an item code mapped), it is applied.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import DBAPIError, IntegrityError

from api.auth import Actor
from api.errors import DomainError, ErrorCode
from api.idempotency import once, recall
from api.services import Services
from integrations.hl7.ack import AckError, build_ack
from integrations.hl7.config import HL7Config
from integrations.hl7.handler_loading import load_handlers
from integrations.hl7.handlers import Handler, HandlerContext, MessageError
from integrations.hl7.parse import InboundMessage, MessageRejected, parse_frame, raw_control_id

log = logging.getLogger("bedside.hl7.inbound")

DOMAIN_TO_HL7: dict[str, str] = {
    ErrorCode.NOT_FOUND: "204",
    ErrorCode.VALIDATION: "102",
    ErrorCode.CONFLICT: "205",
    ErrorCode.ALREADY_DECIDED: "205",
}
INBOUND_FLAG = "hl7_inbound"  # set on the session: what the HIS sent is not echoed back to it


# Who a message's replay key belongs to: the interface itself (the sender is in the scope).
HL7_ACTOR = Actor(
    user_id=0, username="hl7", roles=frozenset({"system"}), department_id=None, via="hl7"
)


@dataclass
class Outcome:
    """What happened to one message: MSA-1 of the application ack and its text."""

    code: str  # AA | AE | AR
    ack: str
    # Enhanced mode's accept ack: CA (we took it), CR (not a message for us), CE (we failed).
    accept: str = "CA"
    error: AckError | None = None


def wanted(condition: str, success: bool) -> bool:
    """Table 0155 (accept/application acknowledgment conditions)."""
    condition = condition.upper()
    if condition == "NE":
        return False
    if condition == "ER":
        return not success
    if condition == "SU":
        return success
    return True  # AL, or empty beside a filled partner


def idempotency_scope(msg: InboundMessage) -> str:
    # Control ids are unique per sending application (MSH-3), not across senders.
    return f"hl7:{msg.sending_application}"[:60]


class InboundProcessor:
    def __init__(self, services: Services, config: HL7Config) -> None:
        self.services = services
        self.config = config
        self.handlers = load_handlers()
        self.known_departments: set[str] = set()

    def _ack(
        self,
        code: str,
        source: InboundMessage | None,
        error: AckError | None = None,
        control_id: str = "",
    ) -> str:
        settings = self.config.settings
        return build_ack(
            code,
            source=source,
            application=settings.application,
            facility=settings.facility,
            error=error,
            control_id=control_id,
        )

    async def handle_frame(self, frame: bytes) -> list[bytes]:
        """What the MLLP server calls: bytes of a message -> the bytes of its ACK(s)."""
        try:
            msg = parse_frame(frame, self.config.mapping)
        except MessageRejected as exc:
            log.warning(
                "hl7 message rejected before parsing", extra={"fields": {"reason": exc.reason}}
            )
            return [
                self._ack(
                    "AR",
                    None,
                    AckError(exc.error_code, exc.reason),
                    control_id=raw_control_id(frame),
                ).encode(exc.charset, errors="replace")
            ]
        if msg.message_type == "ACK":
            return []  # an acknowledgement is never acknowledged (HL7 v2.5 §2.9.3)
        outcome = await self.apply(msg)
        texts = self.acknowledgements(msg, outcome)
        return [text.encode(msg.codec, errors="replace") for text in texts]

    def acknowledgements(self, msg: InboundMessage, outcome: Outcome) -> list[str]:
        accept_type, app_type = msg.accept_ack_type, msg.application_ack_type
        if not accept_type and not app_type:
            return [outcome.ack]  # original mode
        out = []
        if wanted(accept_type, outcome.accept == "CA"):
            error = outcome.error if outcome.accept != "CA" else None
            out.append(self._ack(outcome.accept, msg, error))
        if outcome.accept == "CA" and wanted(app_type, outcome.code == "AA"):
            out.append(outcome.ack)
        return out

    def check(self, msg: InboundMessage, handler: Handler | None) -> AckError | None:
        mapping = self.config.mapping
        if msg.version not in mapping.accepted_versions:
            return AckError(
                "203",
                f"不支持的 HL7 版本 / unsupported HL7 version {msg.version[:10]!r}; accepted: {', '.join(mapping.accepted_versions)}",
                "MSH",
                12,
            )
        if msg.processing_id not in mapping.accepted_processing_ids:
            return AckError(
                "202",
                f"不支持的处理标识 / unsupported processing id {msg.processing_id[:3]!r}",
                "MSH",
                11,
            )
        if handler is None:
            known = {t for t, _ in self.handlers}
            code = "201" if msg.message_type in known else "200"
            return AckError(
                code,
                f"不支持的消息类型 / unsupported message {msg.message_type[:3]}^{msg.trigger[:3]}",
                "MSH",
                9,
            )
        return None

    def handler_for(self, msg: InboundMessage) -> Handler | None:
        if msg.message_type == "ADT" and msg.trigger in self.config.mapping.adt_processes:
            from integrations.hl7.handlers.processes import start_process_for_event

            return start_process_for_event
        return self.handlers.get((msg.message_type, msg.trigger))

    async def apply(self, msg: InboundMessage) -> Outcome:
        handler = self.handler_for(msg)
        if (
            handler is None
            and msg.message_type == "ADT"
            and msg.trigger in self.config.mapping.ignored_adt_triggers
        ):
            self._log(msg, "AA", "ignored")
            return Outcome("AA", self._ack("AA", msg))
        rejection = self.check(msg, handler)
        if rejection is not None:
            self._log(msg, "AR", rejection.text)
            return Outcome("AR", self._ack("AR", msg, rejection), accept="CR", error=rejection)
        assert handler is not None
        scope = idempotency_scope(msg)
        try:
            async with self.services.db.transaction() as session:
                session.info[INBOUND_FLAG] = True
                slot = await once(session, scope, msg.control_id, actor=HL7_ACTOR)
                if slot.first is not None:
                    self._log(msg, "replay", None)
                    return Outcome("AA", str(slot.first["ack"]))
                summary = await handler(
                    session,
                    HandlerContext(
                        self.services, self.config, known_departments=self.known_departments
                    ),
                    msg,
                )
                ack = self._ack("AA", msg)
                await slot.done(
                    {
                        "ack": ack,
                        "type": f"{msg.message_type}^{msg.trigger}",
                        "summary": _jsonable(summary),
                    }
                )
        except MessageError as exc:
            return self._refuse(msg, AckError(exc.code, exc.text, exc.segment, exc.field))
        except DomainError as exc:
            return self._refuse(msg, AckError(DOMAIN_TO_HL7.get(exc.code, "207"), exc.message))
        except IntegrityError:
            # The same message on two connections at once: the other one committed first.
            async with self.services.db.session() as session:
                prior = await recall(session, scope, msg.control_id, actor=HL7_ACTOR)
            if prior is not None:
                return Outcome("AA", str(prior["ack"]))
            log.exception("hl7 message hit a constraint")
            return self._retry(
                msg, AckError("206", "记录冲突，请重发 / conflicting write, resend the message")
            )
        except DBAPIError:
            # Serialization failures, deadlocks, lost connections: nothing was written.
            log.exception("hl7 message hit a database error")
            return self._retry(
                msg, AckError("206", "记录冲突，请重发 / conflicting write, resend the message")
            )
        except Exception:
            log.exception(
                "hl7 message failed",
                extra={"fields": {"control_id": msg.control_id, "type": msg.message_type}},
            )
            return self._retry(
                msg, AckError("207", "系统内部错误，请重发 / internal error, resend the message")
            )
        self._log(msg, "AA", None)
        return Outcome("AA", ack)

    def _refuse(self, msg: InboundMessage, error: AckError) -> Outcome:
        """The content cannot be applied: AE, the sender fixes the cause before resending."""
        self._log(msg, "AE", error.text)
        return Outcome("AE", self._ack("AE", msg, error))

    def _retry(self, msg: InboundMessage, error: AckError) -> Outcome:
        """We failed, not the message: AR, the sender resends it unchanged (CE in enhanced)."""
        self._log(msg, "AR", error.text)
        return Outcome("AR", self._ack("AR", msg, error), accept="CE", error=error)

    def _log(self, msg: InboundMessage, outcome: str, reason: str | None) -> None:
        # Control id and type only: the message itself carries patient data.
        log.info(
            "hl7 message",
            extra={
                "fields": {
                    "control_id": msg.control_id,
                    "type": f"{msg.message_type}^{msg.trigger}",
                    "from": msg.sending_application,
                    "outcome": outcome,
                    "reason": reason,
                }
            },
        )


def _jsonable(summary: dict[str, Any]) -> dict[str, Any]:
    return {
        k: v if isinstance(v, str | int | float | bool | type(None)) else str(v)
        for k, v in summary.items()
    }
