"""What each message says. Every reminder reads differently (which reminder, waiting
since when, a reference): DingTalk drops the same content to one person within a day,
and a person should see at a glance that this is the third time of asking."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo


@dataclass(slots=True)
class Item:
    notice: Any  # a Notice, or the sweep's row of one (the same attributes)
    reminder_no: int


def _when(value: datetime | None, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime("%m-%d %H:%M") if value else "—"


def single_text(item: Item, tz: ZoneInfo) -> tuple[str, str]:
    n, k = item.notice, item.reminder_no
    ref = f"编号 / ref: N{n.id}-R{k}"
    if k == 0:
        return n.title, f"{n.body}\n{ref}".strip()
    since = _when(n.delivered_at, tz)
    title = f"【第{k}次提醒 / reminder {k}】{n.title}"
    body = f"{n.body}\n自 {since} 起待阅 / waiting since {since}\n{ref}".strip()
    return title[:200], body


def digest_text(items: list[Item], tz: ZoneInfo) -> tuple[str, str]:
    count = len(items)
    oldest = min((i.notice.delivered_at or i.notice.created_at) for i in items)
    lines = []
    for i in items:
        tag = f"（第{i.reminder_no}次提醒 / reminder {i.reminder_no}）" if i.reminder_no else ""
        lines.append(f"• {i.notice.title}{tag}")
    refs = ",".join(f"N{i.notice.id}-R{i.reminder_no}" for i in items)
    title = f"您有 {count} 条待阅通知 / {count} notices waiting"
    body = (
        "\n".join(lines)
        + f"\n最早自 {_when(oldest, tz)} 起待阅 / oldest waiting since {_when(oldest, tz)}\n编号 / ref: {refs}"
    )
    return title, body[:4000]


def dispatch_key(items: list[Item], channel: str) -> str:
    """(notice, reminder, channel) for one item; a stable hash of the set for a digest."""
    if len(items) == 1:
        return f"n{items[0].notice.id}:r{items[0].reminder_no}:{channel}"
    pairs = "|".join(
        f"{i.notice.id}.{i.reminder_no}" for i in sorted(items, key=lambda i: i.notice.id)
    )
    return f"d{hashlib.sha256(pairs.encode()).hexdigest()[:24]}:{channel}"


def rekey(key: str, channel: str) -> str:
    return key.rsplit(":", 1)[0] + f":{channel}"


def link_signature(secret: str, notice_id: int, recipient_id: int) -> str:
    message = f"notice-link:{notice_id}:{recipient_id}".encode()
    # The one-shot digest: a sweep signs a link per message, thousands at a time.
    return hmac.digest(secret.encode(), message, "sha256").hex()[:32]


def notice_link(public_url: str, secret: str, notice: Any) -> str:
    assert notice.id is not None
    return f"{public_url.rstrip('/')}/n/{notice.id}?sig={link_signature(secret, notice.id, notice.recipient_id)}"
