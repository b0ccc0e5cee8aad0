"""不良执业管理: the negative list, scores, appeals, penalty rules and issuing (seed 004).

记分 (a score) is recorded by a functional department (医务处, 药剂科, 感染办 …) against a
doctor and department, and the doctor is told at once. The doctor may appeal (申诉); the
appeal is an approval (`penalty_appeal`) reviewed by medical affairs (复核): upheld revokes
the score, rejected confirms it. A score can also be confirmed directly.

A confirmed score triggers the calculation (奖惩计算) with the rules in force when the
behaviour happened (`calculation`). Penalties go 未下发 pending → 已下发 issued → 已结束
ended (`issuing`); each change is appended to the hash chain `penalty:{id}` (`history`).

Modules: `states` (the states, named once), `catalog` (negative list and rules,
versioned), `access` (who may see and do what), `scores`, `calculation`, `issuing`,
`statistics`.
"""

from __future__ import annotations

from api.domain.penalties.access import (
    ISSUERS,
    OVERSEERS,
    SCORERS,
    access_penalty,
    access_score,
    can_oversee,
    can_see_doctor,
    visible_clause,
)
from api.domain.penalties.calculation import calculate
from api.domain.penalties.catalog import (
    item_in_force,
    negative_list,
    period_bounds,
    publish_item_version,
    publish_rule_version,
    rules_in_force,
)
from api.domain.penalties.history import penalty_stream
from api.domain.penalties.issuing import end_penalty, issue_penalty
from api.domain.penalties.scores import (
    APPEAL_DEFINITION,
    APPEAL_SOURCE,
    appeal_score,
    confirm_score,
    record_score,
    register_appeal_hooks,
)
from api.domain.penalties.states import (
    STATUS_ZH,
    PenaltyStatus,
    Period,
    RuleKind,
    ScoreStatus,
)
from api.domain.penalties.statistics import (
    DepartmentTotal,
    DoctorTotal,
    department_name,
    rankings,
)

__all__ = [
    "APPEAL_DEFINITION",
    "register_appeal_hooks",
    "APPEAL_SOURCE",
    "ISSUERS",
    "OVERSEERS",
    "SCORERS",
    "STATUS_ZH",
    "DepartmentTotal",
    "DoctorTotal",
    "PenaltyStatus",
    "Period",
    "RuleKind",
    "ScoreStatus",
    "access_penalty",
    "access_score",
    "appeal_score",
    "calculate",
    "can_oversee",
    "can_see_doctor",
    "confirm_score",
    "department_name",
    "end_penalty",
    "issue_penalty",
    "item_in_force",
    "negative_list",
    "penalty_stream",
    "period_bounds",
    "publish_item_version",
    "publish_rule_version",
    "rankings",
    "record_score",
    "rules_in_force",
    "visible_clause",
]
