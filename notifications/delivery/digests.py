"""Digests: several pending items for one person in one sweep become one message."""

from __future__ import annotations

from typing import Any

from notifications.delivery.texts import Item
from notifications.outbox.policies import Policy

# Several pending items for one person in one sweep become one message from this many on.
DIGEST_MIN_ITEMS = 3


def groups(items: list[Item], pref: Any, policies: dict[int, Policy]) -> list[list[Item]]:
    """One message per item, or a digest of the non-critical ones when they pile up."""
    wants_digest = pref.digest if pref is not None else True
    if not wants_digest or len(items) < DIGEST_MIN_ITEMS:
        return [[i] for i in items]
    digestible = [i for i in items if not i.notice.critical and policies[i.notice.id].digest]
    if len(digestible) < DIGEST_MIN_ITEMS:
        return [[i] for i in items]
    rest = [[i] for i in items if i not in digestible]
    return [digestible, *rest]
