"""Reminder policies loaded from `policies.yaml` (data, versioned)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from notifications.outbox.workhours import WorkingHours

POLICY_FILE = Path(__file__).with_name("policies.yaml")


@dataclass(frozen=True)
class Policy:
    key: str
    version: int
    every_working_hours: float
    max_reminders: int
    escalate: str | None
    digest: bool
    respect_quiet_hours: bool
    # Channels on which an interactive card is the first delivery (the approval card on
    # DingTalk / WeCom): no separate text goes there first; reminders still do.
    first_delivery_by_card: frozenset[str] = frozenset()
    # "working": the interval counts working hours (the default); "wall": clock time, day
    # and night (a critical lab value cannot wait for Monday morning).
    clock: str = "working"

    def after(self, hours: WorkingHours, moment: datetime) -> datetime:
        """One interval of this policy after `moment`."""
        if self.clock == "wall":
            return moment + timedelta(hours=self.every_working_hours)
        return hours.add(moment, self.every_working_hours)

    def next_due(self, hours: WorkingHours, scheduled: datetime, now: datetime) -> datetime:
        """The next reminder after one fired for `scheduled`, at `now`.

        Counted from when it was due, so reminders keep the policy's times; if that is
        already past (the worker was down), counted from now, so what fell due during an
        outage becomes one reminder instead of a burst.
        """
        nxt = self.after(hours, scheduled)
        return nxt if nxt > now else self.after(hours, now)


@dataclass(frozen=True)
class PolicySet:
    policies: dict[tuple[str, int], Policy]
    kinds: list[tuple[str, str]]
    working_hours_periods: list[list[str]]

    def hours(self, tz: ZoneInfo) -> WorkingHours:
        return WorkingHours.from_config(self.working_hours_periods, tz)

    def latest(self, key: str) -> Policy:
        versions = [p for (k, _), p in self.policies.items() if k == key]
        if not versions:
            raise KeyError(f"unknown notification policy {key!r}")
        return max(versions, key=lambda p: p.version)

    def get(self, key: str | None, version: int | None) -> Policy | None:
        if key is None:
            return None
        if version is not None and (key, version) in self.policies:
            return self.policies[(key, version)]
        return self.latest(key)

    def for_kind(self, kind: str) -> Policy:
        for pattern, key in self.kinds:
            if pattern == kind or (pattern.endswith("*") and kind.startswith(pattern[:-1])):
                return self.latest(key)
        return self.latest("once")


def parse_policies(raw: dict[str, Any]) -> PolicySet:
    policies: dict[tuple[str, int], Policy] = {}
    for item in raw["policies"]:
        repeat = item.get("repeat") or {}
        wall = "every_minutes" in repeat
        policy = Policy(
            key=item["key"],
            version=int(item["version"]),
            every_working_hours=(
                float(repeat["every_minutes"]) / 60
                if wall
                else float(repeat.get("every_working_hours", 0))
            ),
            clock="wall" if wall else "working",
            max_reminders=int(repeat.get("max", 0)),
            escalate=item.get("escalate"),
            digest=bool(item.get("digest", True)),
            respect_quiet_hours=item.get("quiet_hours", "respect") == "respect",
            first_delivery_by_card=frozenset(item.get("first_delivery_by_card") or ()),
        )
        if policy.max_reminders and policy.every_working_hours <= 0:
            raise ValueError(f"policy {policy.key} repeats without an interval")
        policies[(policy.key, policy.version)] = policy
    kinds = list((raw.get("kinds") or {"*": "once"}).items())
    return PolicySet(policies, kinds, raw["working_hours"]["periods"])


@cache
def default_policies() -> PolicySet:
    return parse_policies(yaml.safe_load(POLICY_FILE.read_text(encoding="utf-8")))
