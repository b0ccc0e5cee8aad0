"""Hooks other areas plug into the engine, per definition key (kind).

- A decision guard runs whenever a step completes and before final approval. Findings
  block the instance with their messages as the reason; signatures already given stay.
  (Surgery: the operating surgeon's privilege was suspended or revoked mid-flow.)
- A completion hook runs in the same transaction when an instance is finally approved
  (surgery: the approval PDF; privileges: activate the grant).
- A closing hook runs in the same transaction when an instance ends any other way
  (rejected, withdrawn, blocked); `instance.status` says which.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import Actor

if TYPE_CHECKING:
    from api.models.approvals import ApprovalInstance


@dataclass(frozen=True)
class Finding:
    """One reason a rule said no: a code, a message (zh / en) and the field it concerns."""

    code: str
    message: str
    field: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DecisionGuard = Callable[[AsyncSession, "ApprovalInstance", datetime], Awaitable[list[Finding]]]
InstanceHook = Callable[[AsyncSession, "ApprovalInstance", Actor, datetime], Awaitable[None]]

_guards: dict[str, list[DecisionGuard]] = defaultdict(list)
_completion_hooks: dict[str, list[InstanceHook]] = defaultdict(list)
_closing_hooks: dict[str, list[InstanceHook]] = defaultdict(list)


def _add(registry: dict[str, list[Any]], kind: str, fn: Any) -> Any:
    if fn not in registry[kind]:  # importing a module twice must not run its hook twice
        registry[kind].append(fn)
    return fn


def register_decision_guard(kind: str, fn: DecisionGuard) -> DecisionGuard:
    return _add(_guards, kind, fn)


def register_completion_hook(kind: str, fn: InstanceHook) -> InstanceHook:
    return _add(_completion_hooks, kind, fn)


def register_closing_hook(kind: str, fn: InstanceHook) -> InstanceHook:
    return _add(_closing_hooks, kind, fn)


def unregister(kind: str, fn: Any) -> None:
    """Remove a guard or hook (tests, or an area switched off at runtime)."""
    for registry in (_guards, _completion_hooks, _closing_hooks):
        if fn in registry.get(kind, []):
            registry[kind].remove(fn)


async def run_guards(
    session: AsyncSession, instance: ApprovalInstance, now: datetime
) -> list[Finding]:
    findings: list[Finding] = []
    for guard in _guards.get(instance.kind, []):
        findings.extend(await guard(session, instance, now))
    return findings


async def run_completion_hooks(
    session: AsyncSession, instance: ApprovalInstance, actor: Actor, now: datetime
) -> None:
    for hook in _completion_hooks.get(instance.kind, []):
        await hook(session, instance, actor, now)


async def run_closing_hooks(
    session: AsyncSession, instance: ApprovalInstance, actor: Actor, now: datetime
) -> None:
    for hook in _closing_hooks.get(instance.kind, []):
        await hook(session, instance, actor, now)
