"""General acknowledgements (ACK), original mode, as HL7 v2.5 chapter 2 describes them.

MSA-1 is AA (applied), AE (could not be applied: the reason is about the content, e.g. an
unknown patient) or AR (rejected: unsupported version, type or encoding). The reason goes
into MSA-3 (text) and into ERR (HL7 error code from table 0357, severity, user message).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from integrations.hl7.parse import InboundMessage

V2_VERSION = re.compile(r"^2\.[1-9](\.[0-9])?$")

# HL7 table 0357, the codes we answer with.
ERROR_TEXT = {
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "206": "Application record locked",
    "207": "Application internal error",
}


@dataclass
class AckError:
    code: str  # table 0357
    text: str  # zh-CN / English, never patient data
    segment: str = ""
    field: int | None = None


def escape(value: str) -> str:
    """Escape the standard delimiters (HL7 v2.5 §2.7.4) in a value we write."""
    out = value.replace("\\", "\\E\\")
    for char, sequence in (("|", "\\F\\"), ("^", "\\S\\"), ("&", "\\T\\"), ("~", "\\R\\")):
        out = out.replace(char, sequence)
    return out.replace("\r", " ").replace("\n", " ")


def new_control_id() -> str:
    return uuid.uuid4().hex[:20]  # MSH-10 is at most 20 characters in v2.5


def timestamp(moment: datetime | None = None, tz: tzinfo = UTC) -> str:
    """DTM with its offset (HL7 v2.5 §2.A.22): `YYYYMMDDHHMMSS+ZZZZ`, in `tz`'s local time."""
    return (moment or datetime.now(UTC)).astimezone(tz).strftime("%Y%m%d%H%M%S%z")


def build_ack(
    code: str,
    *,
    source: InboundMessage | None,
    application: str,
    facility: str,
    error: AckError | None = None,
    control_id: str = "",
) -> str:
    """The ACK text for `source` (None when the frame could not even be parsed)."""
    if source is not None:
        receiving_app, receiving_facility = source.sending_application, source.sending_facility
        trigger, control_id, version = source.trigger, source.control_id, source.version or "2.5"
        processing, charset = source.processing_id or "P", source.charset_label
    else:
        receiving_app = receiving_facility = trigger = charset = ""
        # MSA-2 is required: the id read from the raw header, else a mark that there was none.
        control_id = control_id or "UNKNOWN"
        version, processing = "2.5", "P"
    msh = [
        "MSH",
        "^~\\&",
        escape(application),
        escape(facility),
        escape(receiving_app),
        escape(receiving_facility),
        timestamp(),
        "",
        f"ACK^{escape(trigger)}^ACK",
        new_control_id(),
        escape(processing),
        escape(version),
        "",
        "",
        "",
        "",
        "",
        escape(charset),
    ]
    # The version we answer with is the sender's when it is a v2 version; an ACK to a message
    # of a version we do not speak (3.0, garbage) is written in ours.
    if source is None or not V2_VERSION.match(source.version):
        msh[11] = "2.5"
    while msh and msh[-1] == "":
        msh.pop()
    segments = ["|".join(msh)]
    msa = ["MSA", code, escape(control_id)]
    if error is not None:
        msa.append(escape(error.text))
    segments.append("|".join(msa))
    if error is not None:
        location = (
            f"{escape(error.segment)}^1^{error.field}"
            if error.segment and error.field
            else escape(error.segment)
        )
        err_code = f"{error.code}^{ERROR_TEXT.get(error.code, '')}^HL70357"
        segments.append(
            "|".join(["ERR", "", location, err_code, "E", "", "", "", escape(error.text)])
        )
    return "\r".join(segments) + "\r"
