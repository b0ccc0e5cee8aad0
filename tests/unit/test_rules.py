"""The pure rule functions, on hand-worked examples.

Each expected value below is worked out by hand from the rule's own statement (its
docstring, the policy text, the official holiday notice), not computed by the code.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from api.domain.approvals.actions import may_return_to
from api.domain.approvals.definition import parse_definition
from api.domain.penalties import period_bounds
from notifications.outbox.policies import Policy
from notifications.outbox.workhours import WorkingHours
from sync.merge import plan_merge

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Mornings 08:00-12:00, afternoons 14:00-17:30: 7.5 working hours a day.
HOURS = WorkingHours.from_config([["08:00", "12:00"], ["14:00", "17:30"]], SHANGHAI)


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SHANGHAI)


# --- working hours --------------------------------------------------------------------
# The 2025 National Day / Mid-Autumn notice of the State Council (国办发明电〔2024〕12号):
# 10月1日至8日放假调休，共8天；9月28日（周日）、10月11日（周六）上班.


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        # Inside one morning.
        (local(2025, 9, 22, 9), 2, local(2025, 9, 22, 11)),
        # Over lunch: one hour before noon, one after 14:00.
        (local(2025, 9, 22, 11), 2, local(2025, 9, 22, 15)),
        # Started at night: counting begins at 08:00 the next working day.
        (local(2025, 9, 22, 20), 0.5, local(2025, 9, 23, 8, 30)),
        # Friday 16:30 + 2 h: one hour on Friday, Saturday is off, Sunday 28 Sept is a
        # make-up working day, so the second hour ends at 09:00 on Sunday.
        (local(2025, 9, 26, 16, 30), 2, local(2025, 9, 28, 9)),
        # Tuesday 30 Sept 17:00 + 1 h: half an hour that day, 1-8 Oct are holidays,
        # the other half hour ends at 08:30 on Thursday 9 Oct.
        (local(2025, 9, 30, 17), 1, local(2025, 10, 9, 8, 30)),
        # A whole working day (7.5 h) from Monday 08:00 ends at Monday 17:30.
        (local(2025, 9, 22, 8), 7.5, local(2025, 9, 22, 17, 30)),
    ],
)
def test_working_hours_add(start: datetime, hours: float, expected: datetime) -> None:
    assert HOURS.add(start, hours) == expected


def test_working_hours_answer_in_the_callers_zone() -> None:
    start = local(2025, 9, 22, 9).astimezone(UTC)  # 01:00 UTC
    result = HOURS.add(start, 1)
    assert result.tzinfo is UTC and result == datetime(2025, 9, 22, 2, 0, tzinfo=UTC)


# --- reminder policy ------------------------------------------------------------------


def _policy(every: float) -> Policy:
    return Policy(
        key="t",
        version=1,
        every_working_hours=every,
        max_reminders=5,
        escalate=None,
        digest=False,
        respect_quiet_hours=False,
    )


def test_next_reminder_keeps_the_policys_rhythm() -> None:
    # Due at 09:00, fired at 10:00: the next one is 2 working hours after 09:00.
    assert _policy(2).next_due(HOURS, local(2025, 9, 22, 9), local(2025, 9, 22, 10)) == local(
        2025, 9, 22, 11
    )


def test_after_an_outage_the_next_reminder_counts_from_now() -> None:
    # Due at 09:00, but the worker came back at 12:30 (lunch): 11:00 is past, so two
    # working hours from now, which start at 14:00: 16:00.
    assert _policy(2).next_due(HOURS, local(2025, 9, 22, 9), local(2025, 9, 22, 12, 30)) == local(
        2025, 9, 22, 16
    )


# --- penalty periods ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "day", "expected"),
    [
        ("year", date(2026, 12, 2), (date(2026, 1, 1), date(2027, 1, 1))),
        ("quarter", date(2026, 11, 15), (date(2026, 10, 1), date(2027, 1, 1))),
        ("quarter", date(2026, 1, 1), (date(2026, 1, 1), date(2026, 4, 1))),
        ("quarter", date(2026, 6, 30), (date(2026, 4, 1), date(2026, 7, 1))),
        ("month", date(2026, 12, 31), (date(2026, 12, 1), date(2027, 1, 1))),
        ("month", date(2028, 2, 29), (date(2028, 2, 1), date(2028, 3, 1))),
    ],
)
def test_period_bounds(period: str, day: date, expected: tuple[date, date]) -> None:
    assert period_bounds(period, day) == expected


def test_unknown_period_is_refused() -> None:
    with pytest.raises(ValueError, match="week"):
        period_bounds("week", date(2026, 1, 1))


# --- where a return (退回) may go -------------------------------------------------------

DEFINITION = parse_definition(
    {
        "key": "returns",
        "version": 1,
        "name": {"zh": "退回", "en": "Returns"},
        "stages": [
            {"id": "head", "name": {"zh": "科主任", "en": "Head"}, "assignee": {"role": "admin"}},
            {
                "id": "review",
                "name": {"zh": "会审", "en": "Review"},
                "parallel": [
                    {
                        "id": "left",
                        "steps": [
                            {
                                "id": "l1",
                                "name": {"zh": "左一", "en": "L1"},
                                "assignee": {"role": "admin"},
                            },
                            {
                                "id": "l2",
                                "name": {"zh": "左二", "en": "L2"},
                                "assignee": {"role": "admin"},
                            },
                        ],
                    },
                    {
                        "id": "right",
                        "steps": [
                            {
                                "id": "r1",
                                "name": {"zh": "右一", "en": "R1"},
                                "assignee": {"role": "admin"},
                            }
                        ],
                    },
                ],
            },
            {"id": "final", "name": {"zh": "终审", "en": "Final"}, "assignee": {"role": "admin"}},
        ],
    }
)


def _may(step: str, target: str, completed: list[str]) -> bool:
    instance: Any = SimpleNamespace(completed_steps=completed)
    task: Any = SimpleNamespace(step_id=step)
    return may_return_to(DEFINITION, instance, task, target)


@pytest.mark.parametrize(
    ("step", "target", "completed", "allowed"),
    [
        ("final", "head", ["head", "l1", "l2", "r1"], True),  # an earlier stage
        ("final", "r1", ["head", "l1", "l2", "r1"], True),  # a step inside an earlier block
        ("l2", "l1", ["head", "l1"], True),  # earlier in the same branch
        ("l2", "r1", ["head", "l1", "r1"], False),  # the sibling branch is not "before"
        ("l1", "l2", ["head", "l2"], False),  # later in the same branch
        ("l2", "l2", ["head", "l1", "l2"], False),  # itself
        ("head", "final", ["final"], False),  # a later stage
        ("final", "head", ["l1", "l2", "r1"], False),  # not completed in this pass
        ("final", "nowhere", ["head"], False),  # no such step
    ],
)
def test_may_return_to(step: str, target: str, completed: list[str], allowed: bool) -> None:
    assert _may(step, target, completed) is allowed


# --- the offline merge ----------------------------------------------------------------


def test_untouched_field_competes_with_nothing() -> None:
    plan = plan_merge({"note": "server"}, {"note": "old"}, {"note": "old"}, {})
    assert (plan.values, plan.conflicts, plan.status) == ({}, [], "applied")


def test_field_the_server_did_not_change_takes_the_devices_value() -> None:
    plan = plan_merge({"note": "old", "pain": 3}, {"note": "old"}, {"note": "new"}, {})
    assert plan.values == {"note": "new"} and plan.status == "applied"


def test_edits_to_different_fields_both_survive() -> None:
    # The server moved `pain` since the device's base; the device edited `note` only.
    plan = plan_merge(
        {"note": "old", "pain": 5},
        {"note": "old", "pain": 3},
        {"note": "new", "pain": 3},
        {},
        version_moved=True,
    )
    assert plan.values == {"note": "new"} and plan.status == "merged"


def test_set_fields_merge_additions_and_removals() -> None:
    # Server list gained 青霉素 from another PAD; this device removed 花粉 and added 乳胶.
    plan = plan_merge(
        {"allergies": ["花粉", "青霉素"]},
        {"allergies": ["花粉"]},
        {"allergies": ["乳胶"]},
        {"allergies": "set"},
    )
    assert plan.values == {"allergies": ["青霉素", "乳胶"]}
    assert plan.conflicts == [] and plan.status == "merged"


@pytest.mark.parametrize(
    ("server", "device", "client_wins"),
    [("b", "c", True), ("c", "b", False)],  # the greater canonical JSON wins: "c" > "b"
)
def test_same_field_conflict_keeps_the_loser(server: str, device: str, client_wins: bool) -> None:
    plan = plan_merge({"note": server}, {"note": "a"}, {"note": device}, {})
    assert plan.status == "conflict" and len(plan.conflicts) == 1
    conflict = plan.conflicts[0]
    assert conflict.client_won is client_wins
    assert {conflict.winning, conflict.losing} == {"b", "c"} and conflict.winning == "c"
    assert plan.values == ({"note": "c"} if client_wins else {})
