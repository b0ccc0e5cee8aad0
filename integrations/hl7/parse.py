"""From the bytes of one MLLP frame to a parsed HL7 v2 message.

Parsing is python-hl7's (`hl7.parse`): it is lenient with what real feeds send (Z-segments,
extra fields, missing optional fields, any 2.x version) and fast; hl7apy validates
structure against the version's profile, which rejects a good share of real HIS traffic
and costs ~50x more per message. What we add is what comes before parsing:

- the character set: MSH-18 says `UNICODE UTF-8` or `GB 18030-2000`; we must decode the
  bytes before splitting, because a GB 18030 trailing byte may be 0x7C, the `|`;
- the segment separator: `\r` by the standard, `\n` or `\r\n` in practice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import hl7

from integrations.hl7.config import HL7Mapping

# MSH-18 values (HL7 Table 0211 and what Chinese HIS vendors write) -> Python codec.
CHARSETS = {
    "": None,
    "ASCII": "ascii",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UTF8": "utf-8",
    "UNICODE": "utf-8",
    "GB 18030-2000": "gb18030",
    "GB18030": "gb18030",
    "GB 18030": "gb18030",
    "GBK": "gbk",
    "GB2312": "gb18030",  # GB 18030 is a superset; decoding with it never loses a character
    "8859/1": "latin-1",
}


class MessageRejected(Exception):
    """The frame is not a message we can read: answered AR with `error_code` (HL7 table 0357)."""

    def __init__(
        self,
        reason: str,
        *,
        error_code: str = "102",
        charset: str = "utf-8",
        source: hl7.Message | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_code = error_code
        self.charset = charset
        self.source = source


def raw_header(frame: bytes) -> list[str]:
    """MSH fields read from the raw bytes; [] when the frame has no MSH.

    MSH-1..MSH-17 are ASCII in every feed we know of, so reading the header as latin-1
    (one byte, one character) finds them without knowing the encoding yet. Index n is
    MSH-(n+1) from MSH-2 on (index 0 is "MSH", MSH-1 being the separator itself).
    """
    header = frame.split(b"\r", 1)[0].split(b"\n", 1)[0].decode("latin-1")
    start = header.find("MSH")
    if start < 0 or len(header) < start + 4:
        return []
    return header[start:].split(header[start + 3])


def declared_charset(frame: bytes) -> str:
    """MSH-18 read from the raw bytes of the MSH segment."""
    fields = raw_header(frame)
    if len(fields) <= 17:
        return ""
    return fields[17].split("~", 1)[0].strip().upper()


def raw_control_id(frame: bytes) -> str:
    """MSH-10 of a frame we could not parse, for MSA-2 of its rejection (required there)."""
    fields = raw_header(frame)
    value = fields[9].strip() if len(fields) > 9 else ""
    return value[:20] if value.isprintable() and "^" not in value else ""


def decode_frame(frame: bytes, mapping: HL7Mapping) -> tuple[str, str]:
    """Decode bytes to text by MSH-18 (or the configured default); returns (text, codec)."""
    label = declared_charset(frame)
    if label not in CHARSETS:
        raise MessageRejected(
            f"不支持的字符集 / unsupported character set in MSH-18: {label[:40]}", error_code="203"
        )
    codec = CHARSETS[label]
    if codec is not None:
        try:
            return frame.decode(codec), codec
        except UnicodeDecodeError as exc:
            raise MessageRejected(
                f"消息内容与 MSH-18 声明的字符集不符 / bytes are not valid {label}",
                error_code="102",
                charset=codec,
            ) from exc
    for candidate in (mapping.default_charset, *mapping.fallback_charsets):
        try:
            return frame.decode(candidate), candidate
        except UnicodeDecodeError:
            continue
    raise MessageRejected(
        "无法识别字符集 / cannot decode the message; declare MSH-18", error_code="102"
    )


def normalize_segments(text: str) -> str:
    """One `\r` between segments whatever the sender used, and no empty segments."""
    lines = text.replace("\r\n", "\r").replace("\n", "\r").split("\r")
    return "\r".join(line for line in lines if line.strip())


@dataclass
class InboundMessage:
    """A parsed message plus the header fields every handler needs."""

    message: hl7.Message
    codec: str
    message_type: str
    trigger: str
    control_id: str
    version: str
    processing_id: str
    sending_application: str
    sending_facility: str
    charset_label: str
    accept_ack_type: str = ""  # MSH-15 (table 0155)
    application_ack_type: str = ""  # MSH-16 (table 0155)

    def segments(self, name: str) -> list[hl7.Segment]:
        try:
            return list(self.message.segments(name))
        except KeyError:
            return []

    def segment(self, name: str) -> hl7.Segment | None:
        found = self.segments(name)
        return found[0] if found else None

    def value(
        self,
        segment: hl7.Segment | None,
        field: int,
        component: int = 1,
        repetition: int = 1,
        subcomponent: int = 1,
    ) -> str:
        """The unescaped text at a position, '' when absent."""
        return field_value(self.message, segment, field, component, repetition, subcomponent)

    def repetitions(self, segment: hl7.Segment | None, field: int) -> int:
        if segment is None or len(segment) <= field:
            return 0
        content = segment[field]
        if isinstance(content, hl7.Field):
            return len(content) if str(content) else 0
        return 1 if str(content) else 0


def field_value(
    message: hl7.Message,
    segment: hl7.Segment | None,
    field: int,
    component: int = 1,
    repetition: int = 1,
    subcomponent: int = 1,
) -> str:
    if segment is None or len(segment) <= field:
        return ""
    # MSH-1 is the separator itself, so python-hl7 indexes MSH one off from other segments.
    try:
        raw = segment.extract_field(
            repeat_num=repetition,
            field_num=field,
            component_num=component,
            subcomponent_num=subcomponent,
        )
    except (IndexError, KeyError):
        return ""
    return message.unescape(str(raw)).strip() if raw else ""


def parse_frame(frame: bytes, mapping: HL7Mapping) -> InboundMessage:
    text, codec = decode_frame(frame, mapping)
    text = normalize_segments(text)
    if not text.startswith("MSH"):
        raise MessageRejected(
            "消息必须以 MSH 段开始 / the message must start with an MSH segment",
            error_code="100",
            charset=codec,
        )
    try:
        message = hl7.parse(text)
    except Exception as exc:  # python-hl7 raises several kinds on malformed text
        raise MessageRejected(
            f"无法解析消息 / cannot parse the message: {type(exc).__name__}",
            error_code="102",
            charset=codec,
        ) from exc
    msh = message.segment("MSH")

    def header(field: int, component: int = 1) -> str:
        return field_value(message, msh, field, component)

    inbound = InboundMessage(
        message=message,
        codec=codec,
        message_type=header(9, 1).upper(),
        trigger=header(9, 2).upper(),
        control_id=header(10),
        version=header(12),
        processing_id=header(11).upper(),
        sending_application=header(3),
        sending_facility=header(4),
        charset_label=header(18),
        accept_ack_type=header(15).upper(),
        application_ack_type=header(16).upper(),
    )
    if not inbound.control_id:
        raise MessageRejected(
            "缺少消息控制号 MSH-10 / MSH-10 message control id is required",
            error_code="101",
            charset=codec,
            source=message,
        )
    if len(inbound.control_id) > 199:
        raise MessageRejected(
            "MSH-10 过长 / MSH-10 is too long", error_code="102", charset=codec, source=message
        )
    return inbound


def parse_hl7_date(value: str) -> date | None:
    """DT/DTM `YYYYMMDD[HHMM[SS]]...` -> date; '' -> None; anything else ValueError."""
    digits = value.strip()[:8]
    if not digits:
        return None
    return datetime.strptime(digits, "%Y%m%d").date()


def parse_hl7_datetime(value: str, tz: ZoneInfo) -> datetime | None:
    """DTM `YYYYMMDD[HHMM[SS[.S]]][+/-ZZZZ]` -> aware UTC; a time without offset is local."""
    text = value.strip()
    if not text:
        return None
    offset = None
    for sign in ("+", "-"):
        if sign in text[8:]:
            cut = text.rindex(sign)
            text, offset = text[:cut], text[cut:]
            break
    text = text.split(".", 1)[0]
    formats = {8: "%Y%m%d", 10: "%Y%m%d%H", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
    if len(text) not in formats:
        raise ValueError(f"bad HL7 timestamp {value!r}")
    moment = datetime.strptime(text, formats[len(text)])
    if offset:
        return datetime.strptime(text + offset, formats[len(text)] + "%z").astimezone(UTC)
    return moment.replace(tzinfo=tz).astimezone(UTC)
