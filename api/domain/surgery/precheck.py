"""智能预审: the rule-based pre-check a surgery application passes before it is routed.

Rules are named functions in `RULES`; a process definition enables the ones it wants by
name (its `precheck:` list), so adding or disabling a rule is a change of data, and a new
definition version can change the list for new applications only. Every enabled rule
runs and all findings are collected, so the applicant fixes everything in one round.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor
from api.domain import privileges
from api.domain.approvals import Finding
from api.domain.patients import can_see_patient, open_contraindications
from api.domain.privileges import PrivilegeCheck
from api.models.patients import Patient
from api.models.people import User
from api.models.privileges import Procedure

# A planned time a few minutes in the past is the clock of an emergency, not an error.
PAST_GRACE = timedelta(minutes=5)
MAX_TEXT = {"diagnosis": 1000, "anesthesia": 200, "preopAssessment": 4000, "overrideReason": 500}


@dataclass
class SurgeryRequest:
    """What the applicant asks for, already parsed (ids resolved, dates aware)."""

    patient_id: int
    procedure_code: str
    planned_at: datetime
    emergency: bool
    diagnosis: str
    anesthesia: str
    preop_assessment: str | None
    consent_signed: bool
    surgeon: User
    emergency_override: bool = False
    override_reason: str | None = None
    # sha256 of the uploaded pre-operative documents
    attachments: list[str] = field(default_factory=list)


@dataclass
class PrecheckContext:
    session: AsyncSession
    actor: Actor
    request: SurgeryRequest
    now: datetime
    patient: Patient | None = None
    procedure: Procedure | None = None
    privilege: PrivilegeCheck | None = None


@dataclass
class PrecheckResult:
    rules: list[str]
    findings: list[Finding] = field(default_factory=list)
    # Recorded but not blocking: the emergency override of a missing privilege.
    warnings: list[Finding] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "rules": self.rules,
            "findings": [f.as_dict() for f in self.findings],
            "warnings": [f.as_dict() for f in self.warnings],
        }


Rule = Callable[[PrecheckContext], Awaitable[list[Finding]]]
RULES: dict[str, Rule] = {}
DEFAULT_RULES = [
    "materials_complete",
    "procedure_in_catalog",
    "planned_not_in_past",
    "patient_visible",
    "surgeon_privileged",
    "no_contraindication",
]


def rule(name: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        RULES[name] = fn
        return fn

    return register


@rule("materials_complete")
async def materials_complete(ctx: PrecheckContext) -> list[Finding]:
    req = ctx.request
    found = []
    if not req.diagnosis.strip():
        found.append(
            Finding("MISSING_DIAGNOSIS", "缺少术前诊断 / the diagnosis is missing", "diagnosis")
        )
    if not req.anesthesia.strip():
        found.append(
            Finding(
                "MISSING_ANESTHESIA", "缺少麻醉方式 / the anesthesia plan is missing", "anesthesia"
            )
        )
    if not (req.preop_assessment or "").strip():
        found.append(
            Finding(
                "MISSING_PREOP_ASSESSMENT",
                "缺少术前评估 / the pre-operative assessment is missing",
                "preopAssessment",
            )
        )
    if not req.consent_signed:
        found.append(
            Finding(
                "CONSENT_NOT_SIGNED",
                "手术知情同意书未签署 / the informed consent is not signed",
                "consentSigned",
            )
        )
    for name, value in (
        ("diagnosis", req.diagnosis),
        ("anesthesia", req.anesthesia),
        ("preopAssessment", req.preop_assessment),
        ("overrideReason", req.override_reason),
    ):
        if value and len(value) > MAX_TEXT[name]:
            found.append(
                Finding(
                    "TEXT_TOO_LONG",
                    f"内容过长（最多{MAX_TEXT[name]}字）/ too long (at most {MAX_TEXT[name]} characters)",
                    name,
                )
            )
    return found


@rule("procedure_in_catalog")
async def procedure_in_catalog(ctx: PrecheckContext) -> list[Finding]:
    if not ctx.request.procedure_code.strip():
        return [
            Finding(
                "MISSING_PROCEDURE",
                "未填写拟施手术 / the planned procedure is missing",
                "procedureCode",
            )
        ]
    if ctx.procedure is None:
        return [
            Finding(
                "UNKNOWN_PROCEDURE",
                f"手术目录中无此手术 / procedure not in the catalog: {ctx.request.procedure_code[:40]}",
                "procedureCode",
            )
        ]
    return []


@rule("planned_not_in_past")
async def planned_not_in_past(ctx: PrecheckContext) -> list[Finding]:
    if ctx.request.planned_at < ctx.now - PAST_GRACE:
        return [
            Finding(
                "PLANNED_IN_PAST", "拟手术时间已过 / the planned time is in the past", "plannedAt"
            )
        ]
    return []


@rule("patient_visible")
async def patient_visible(ctx: PrecheckContext) -> list[Finding]:
    if ctx.patient is None:
        return [Finding("PATIENT_NOT_FOUND", "患者不存在 / patient not found", "patientId")]
    if not can_see_patient(ctx.actor, ctx.patient):
        return [
            Finding(
                "PATIENT_NOT_VISIBLE",
                "无权为该患者申请手术 / you may not apply for this patient",
                "patientId",
            )
        ]
    return []


@rule("surgeon_privileged")
async def surgeon_privileged(ctx: PrecheckContext) -> list[Finding]:
    if ctx.procedure is None or ctx.privilege is None or ctx.privilege.holds:
        return []
    code = ctx.privilege.code or "NO_PRIVILEGE"
    finding = Finding(code, ctx.privilege.message(ctx.procedure), "surgeonUsername")
    req = ctx.request
    # An emergency may go ahead without the privilege, only as a logged override that the
    # surgeon's superior confirms afterwards; a suspension cannot be overridden.
    if req.emergency_override and code == "NO_PRIVILEGE":
        if not req.emergency:
            return [
                finding,
                Finding(
                    "OVERRIDE_NOT_EMERGENCY",
                    "仅急诊手术可申请授权例外 / an override is only for emergencies",
                    "emergencyOverride",
                ),
            ]
        if not (req.override_reason or "").strip():
            return [
                finding,
                Finding(
                    "OVERRIDE_REASON_REQUIRED",
                    "请填写紧急例外理由 / give the reason for the override",
                    "overrideReason",
                ),
            ]
        return []
    return [finding]


@rule("no_contraindication")
async def no_contraindication(ctx: PrecheckContext) -> list[Finding]:
    # Nothing about a patient the caller may not see.
    if ctx.patient is None or not can_see_patient(ctx.actor, ctx.patient):
        return []
    assert ctx.patient.id is not None
    return [
        Finding(
            "CONTRAINDICATION",
            f"患者存在未关闭的手术禁忌标记（{flag.code}）/ open contraindication flag: {flag.code}",
            "patientId",
        )
        for flag in await open_contraindications(ctx.session, ctx.patient.id)
    ]


def unknown_rules(names: list[str]) -> list[str]:
    return [n for n in names if n not in RULES]


async def run_precheck(
    session: AsyncSession, actor: Actor, request: SurgeryRequest, *, rules: list[str], now: datetime
) -> tuple[PrecheckResult, PrecheckContext]:
    ctx = PrecheckContext(session=session, actor=actor, request=request, now=now)
    ctx.patient = await session.get(Patient, request.patient_id)
    ctx.procedure = await privileges.procedure_by_code(session, request.procedure_code)
    if ctx.procedure is not None:
        assert request.surgeon.id is not None
        ctx.privilege = await privileges.check_privilege(
            session, request.surgeon.id, ctx.procedure, request.planned_at
        )
    result = PrecheckResult(rules=list(rules))
    for name in rules:
        result.findings.extend(await RULES[name](ctx))
    if (
        "surgeon_privileged" in rules
        and request.emergency_override
        and ctx.privilege is not None
        and ctx.privilege.code == "NO_PRIVILEGE"
        and not any(f.field == "surgeonUsername" for f in result.findings)
    ):
        assert ctx.procedure is not None
        result.warnings.append(
            Finding(
                "EMERGENCY_OVERRIDE",
                ctx.privilege.message(ctx.procedure) + "（紧急例外 / emergency override）",
                "surgeonUsername",
            )
        )
    return result, ctx
