"""Field-level merge of a device's edit into the server's record.

The device sends, for each field it changed, the value it saw (`base`) and its new value
(`changes`). Records are versioned by the server only; device clocks play no part.

- A field the device sends unchanged (equal to its base) is no edit at all.
- A field the server has not changed since the base takes the device's value.
- Edits to different fields of one record therefore both survive.
- `set` fields (allergy lists) merge as sets: the device's additions and removals are
  applied to the server's current list, so two PADs adding allergies both win.
- When the server changed the same scalar field too, the winner is chosen by a rule
  that depends only on the two values (the greater canonical JSON wins). It is arbitrary,
  but commutative and associative, so the final value is the same whatever order the
  pushes arrive in. The losing value is never thrown away: it is kept as a conflict the
  therapist sees (`syncConflicts`) and can resolve (`resolveSyncConflict`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

Strategy = Literal["scalar", "set"]


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def same(a: Any, b: Any) -> bool:
    return canonical(a) == canonical(b)


def winner(server_value: Any, client_value: Any) -> Literal["server", "client"]:
    """The deterministic same-field rule: order-independent by construction."""
    return "client" if canonical(client_value) > canonical(server_value) else "server"


@dataclass
class FieldConflict:
    field: str
    base: Any
    winning: Any
    losing: Any
    client_won: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "base": self.base,
            "winning": self.winning,
            "losing": self.losing,
            "clientWon": self.client_won,
        }


@dataclass
class MergePlan:
    values: dict[str, Any] = field(default_factory=dict)  # what to write
    conflicts: list[FieldConflict] = field(default_factory=list)
    concurrent: bool = False  # the server changed something the device had not seen

    @property
    def status(self) -> str:
        if self.conflicts:
            return "conflict"
        return "merged" if self.concurrent else "applied"


def merge_set(current: list[Any], base: list[Any], mine: list[Any]) -> list[Any]:
    added = [x for x in mine if x not in base]
    removed = {canonical(x) for x in base if x not in mine}
    result = [x for x in current if canonical(x) not in removed]
    return result + [x for x in added if x not in result]


def plan_merge(
    current: dict[str, Any],
    base: dict[str, Any],
    changes: dict[str, Any],
    strategies: dict[str, Strategy],
    *,
    version_moved: bool = False,
) -> MergePlan:
    """Decide each changed field. `current` holds the server's values (JSON-shaped)."""
    plan = MergePlan(concurrent=version_moved)
    for name, mine in changes.items():
        server = current.get(name)
        seen = base.get(name)
        if name in base and same(mine, seen):
            continue  # the device did not change this field: it competes with nothing
        if strategies.get(name, "scalar") == "set":
            merged = merge_set(list(server or []), list(seen or []), list(mine or []))
            if not same(server, seen):
                plan.concurrent = True
            if not same(merged, server):
                plan.values[name] = merged
            continue
        if same(server, seen) or same(server, mine):
            if not same(server, mine):
                plan.values[name] = mine
            continue
        plan.concurrent = True
        if winner(server, mine) == "client":
            plan.values[name] = mine
            plan.conflicts.append(
                FieldConflict(name, seen, winning=mine, losing=server, client_won=True)
            )
        else:
            plan.conflicts.append(
                FieldConflict(name, seen, winning=server, losing=mine, client_won=False)
            )
    return plan
