"""The format of a process definition, validated, and the conditions it contains.

A definition is data (YAML or JSON), for example::

    key: surgery
    version: 1
    name: {zh: 手术审批, en: Surgery approval}
    deadline:                      # the whole instance
      hours: 24
      working_hours: false         # true: count Chinese working hours (chinese-calendar)
      overrides:
        - when: {field: emergency, op: "==", value: true}
          hours: 2
    critical_when: {field: emergency, op: "==", value: true}   # notices are critical
    stages:
      - id: dept_head              # a stage with a single step
        name: {zh: 科主任审批, en: Department head}
        assignee: {department_head: applicant}
      - id: medical_affairs
        name: {zh: 医务处审批, en: Medical affairs}
        assignee: {role: medical_affairs}
        mode: any                  # 或签; `all` is 会签
        when: {field: grade, op: "==", value: 3}
        deadline_hours: 8
      - id: final                  # a parallel block: every branch must finish
        when: {field: grade, op: ">=", value: 4}
        parallel:
          - id: ma
            steps: [{id: ma_sign, name: {zh: 医务处会签}, assignee: {role: medical_affairs}}]
          - id: vp
            steps: [{id: vp_sign, name: {zh: 副院长会签}, assignee: {user: vp.chen}}]

Conditions are structured (`{field, op, value}`, `{all: [...]}`, `{any: [...]}`,
`{not: ...}`); nothing is evaluated as code.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from api.domain.approvals.conditions import (
    IDENT,
    Condition,
    LocalizedName,
    _Strict,
    holds,
)
from api.domain.approvals.forms import Form
from api.errors import DomainError, ErrorCode
from api.models.people import Role

APPLICANT = "applicant"  # the return target meaning "back to the applicant"


# --- assignees, steps, stages ---------------------------------------------------------


class AssigneeRule(_Strict):
    """Exactly one of: `role` (optionally `scope: applicant_department`),
    `department_head: applicant`, `user: <username>`."""

    role: Role | None = None
    scope: Literal["hospital", "applicant_department"] = "hospital"
    department_head: Literal["applicant"] | None = None
    user: str | None = Field(default=None, min_length=1, max_length=80)

    @model_validator(mode="after")
    def _exactly_one(self) -> AssigneeRule:
        given = [
            name for name in ("role", "department_head", "user") if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError("an assignee rule needs exactly one of role, department_head, user")
        if self.scope != "hospital" and self.role is None:
            raise ValueError("scope applies to a role rule only")
        if self.role == Role.PATIENT:
            raise ValueError("a patient never holds an approval step")
        return self


class Step(_Strict):
    id: str = Field(pattern=IDENT)
    name: LocalizedName
    assignee: AssigneeRule
    mode: Literal["all", "any"] = "all"
    when: Condition | None = None
    deadline_hours: float | None = Field(default=None, gt=0, le=24 * 90)


class Branch(_Strict):
    id: str = Field(pattern=IDENT)
    name: LocalizedName | None = None
    steps: list[Step] = Field(min_length=1)


class Parallel(_Strict):
    id: str = Field(pattern=IDENT)
    name: LocalizedName | None = None
    when: Condition | None = None
    parallel: list[Branch] = Field(min_length=2)


def _stage_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        return "parallel" if "parallel" in value else "step"
    if isinstance(value, BaseModel):
        return "parallel" if isinstance(value, Parallel) else "step"
    return None


Stage = Annotated[
    Annotated[Step, Tag("step")] | Annotated[Parallel, Tag("parallel")], Discriminator(_stage_tag)
]


class DeadlineOverride(_Strict):
    when: Condition
    hours: float = Field(gt=0, le=24 * 90)


class Deadline(_Strict):
    hours: float = Field(gt=0, le=24 * 90)
    working_hours: bool = False
    overrides: list[DeadlineOverride] = Field(default_factory=list)

    def hours_for(self, data: dict[str, Any]) -> float:
        for override in self.overrides:
            if override.when.holds(data):
                return override.hours
        return self.hours


class DefinitionBody(_Strict):
    key: str = Field(pattern=IDENT)
    version: int = Field(ge=1)
    name: LocalizedName
    description: str = Field(default="", max_length=2000)
    deadline: Deadline | None = None
    critical_when: Condition | None = None
    # Names of the pre-check rules (智能预审) the submitting area runs before routing;
    # the area owns the rules (surgery: api/domain/surgery/precheck.py).
    precheck: list[str] | None = Field(default=None, max_length=30)
    # true: anyone on staff may start it through `startProcess` with its form; absent: it
    # belongs to an area with its own submission (surgery, privileges, appeals).
    startable: bool | None = None
    form: Form | None = None
    stages: list[Stage] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> DefinitionBody:
        seen: set[str] = set()
        for placed in self.placed_steps():
            if placed.step.id in seen or placed.step.id == APPLICANT:
                raise ValueError(f"step id {placed.step.id!r} is used twice or reserved")
            seen.add(placed.step.id)
        for stage in self.stages:
            if isinstance(stage, Parallel):
                branch_ids = [b.id for b in stage.parallel]
                if len(set(branch_ids)) != len(branch_ids):
                    raise ValueError(f"branch ids repeat in parallel block {stage.id!r}")
        if self.startable and self.form is None:
            raise ValueError("a startable definition needs a form")
        return self

    def placed_steps(self) -> Iterator[PlacedStep]:
        """Every step with where it sits: stage, branch (None outside a parallel block), position."""
        for stage_index, stage in enumerate(self.stages):
            if isinstance(stage, Parallel):
                for branch in stage.parallel:
                    for position, step in enumerate(branch.steps):
                        yield PlacedStep(step, stage_index, branch.id, position)
            else:
                yield PlacedStep(stage, stage_index, None, 0)


@dataclass(frozen=True)
class PlacedStep:
    step: Step
    stage_index: int
    branch: str | None
    position: int


class Definition:
    """A validated definition plus the lookups the router needs."""

    def __init__(self, body: DefinitionBody) -> None:
        self.body = body
        self.placed = {p.step.id: p for p in body.placed_steps()}

    @property
    def key(self) -> str:
        return self.body.key

    @property
    def version(self) -> int:
        return self.body.version

    @property
    def stages(self) -> list[Step | Parallel]:
        return self.body.stages

    def step(self, step_id: str) -> Step:
        return self.placed[step_id].step

    def branches(self, stage_index: int) -> list[tuple[str | None, list[Step]]]:
        """The stage as branches: a single step is one branch named None."""
        stage = self.stages[stage_index]
        if isinstance(stage, Parallel):
            return [(b.id, b.steps) for b in stage.parallel]
        return [(None, [stage])]

    def stage_applies(self, stage_index: int, data: dict[str, Any]) -> bool:
        stage = self.stages[stage_index]
        return holds(stage.when, data) if isinstance(stage, Parallel) else True

    def deadline_hours(self, data: dict[str, Any]) -> float | None:
        return self.body.deadline.hours_for(data) if self.body.deadline else None

    def is_critical(self, data: dict[str, Any]) -> bool:
        return self.body.critical_when is not None and holds(self.body.critical_when, data)


def _describe(error: ValidationError) -> str:
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "(root)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def parse_definition(body: dict[str, Any]) -> Definition:
    """Validate a definition; a bad one is a VALIDATION error on field `definition`."""
    if not isinstance(body, dict):
        raise DomainError(
            ErrorCode.VALIDATION,
            "流程定义必须是对象 / a definition must be a mapping",
            field="definition",
        )
    try:
        return Definition(DefinitionBody.model_validate(body))
    except ValidationError as exc:
        raise DomainError(
            ErrorCode.VALIDATION,
            f"流程定义无效 / invalid definition: {_describe(exc)}",
            field="definition",
        ) from None
