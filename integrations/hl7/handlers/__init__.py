"""One handler per HL7 message type; each is a thin adapter over `api/domain`.

A handler reads the message, maps HIS codes through the configuration, and calls domain
actions inside the transaction the inbound pipeline opened. It raises `MessageError` (or
lets a `DomainError` through) when the message cannot be applied; the pipeline then rolls
back and answers AE.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor
from api.services import Services
from integrations.hl7.config import HL7Config
from integrations.hl7.parse import InboundMessage

# Who the HIS acts as: no user row, recognisable in audit data by `via`.
HIS_ACTOR = Actor(
    user_id=0,
    username="his",
    roles=frozenset({"system"}),
    department_id=None,
    display_name="HIS",
    via="hl7",
)


class MessageError(Exception):
    """The message is well formed but cannot be applied (answered AE)."""

    def __init__(
        self, code: str, text: str, *, segment: str = "", field: int | None = None
    ) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
        self.segment = segment
        self.field = field


def unknown_key(text: str, segment: str, field: int) -> MessageError:
    return MessageError("204", text, segment=segment, field=field)


def missing(text: str, segment: str, field: int) -> MessageError:
    return MessageError("101", text, segment=segment, field=field)


@dataclass
class HandlerContext:
    services: Services
    config: HL7Config
    actor: Actor = HIS_ACTOR
    # Department codes seen to exist, kept by the processor across messages (a department
    # is not removed while the HIS sends patients to it): one query fewer per message.
    known_departments: set[str] = field(default_factory=set)


Handler = Callable[[AsyncSession, HandlerContext, InboundMessage], Awaitable[dict[str, Any]]]

# (message type, trigger event) -> handler; filled by the modules below.
HANDLERS: dict[tuple[str, str], Handler] = {}


def handles(*keys: tuple[str, str]) -> Callable[[Handler], Handler]:
    def register(function: Handler) -> Handler:
        for key in keys:
            HANDLERS[key] = function
        return function

    return register
