"""The hospital's directory on DingTalk or WeCom (通讯录) matched to Bedside's staff.

The adapter reads the platform's directory and passes plain entries in; this module
decides. A member is matched to an account by the platform id already bound, else by
mobile, else by staff number (工号), and the platform id is bound. Members that match
nobody (or more than one account) are reported, not created: accounts come from the staff
import, with their roles. A bound account whose member has left (gone from the directory,
or marked as left) is deactivated: its pending approval tasks go to the head of its
department first, who is notified as for any new task.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.auth import Actor
from api.domain import approvals, people
from api.errors import DomainError, ErrorCode
from api.models.approvals import ApprovalTask, TaskStatus
from api.models.people import ExternalIdentity, User

# More leavers than this share of the bound accounts looks like a directory the app sees
# only part of (a narrowed permission scope), not a wave of resignations.
MAX_LEAVER_SHARE = 0.2


@dataclass
class DirectoryEntry:
    external_id: str
    name: str
    mobile: str | None = None
    job_number: str | None = None
    left: bool = False


@dataclass
class SyncReport:
    provider: str
    already_bound: int = 0
    bound: list[tuple[str, str, str]] = field(default_factory=list)  # username, id, matched by
    unmatched: list[tuple[DirectoryEntry, str]] = field(default_factory=list)  # entry, why
    deactivated: list[str] = field(default_factory=list)
    handed_over: list[tuple[int, str, str]] = field(default_factory=list)  # task, from, to
    not_handed_over: list[tuple[int, str]] = field(default_factory=list)  # task, from


async def sync_directory(
    session: AsyncSession,
    provider: str,
    entries: list[DirectoryEntry],
    *,
    actor: Actor,
    allow_many_leavers: bool = False,
) -> SyncReport:
    report = SyncReport(provider)
    users = list((await session.execute(sa.select(User))).scalars())
    by_id = {u.id: u for u in users}
    bound = {
        i.external_id: by_id[i.user_id]
        for i in (
            await session.execute(
                sa.select(ExternalIdentity).where(col(ExternalIdentity.provider) == provider)
            )
        ).scalars()
    }
    bound_users = {u.id for u in bound.values()}
    by_mobile: dict[str, list[User]] = {}
    by_job: dict[str, list[User]] = {}
    for user in users:
        if user.is_active and user.mobile:
            by_mobile.setdefault(user.mobile, []).append(user)
        if user.is_active and user.job_number:
            by_job.setdefault(user.job_number, []).append(user)

    present: set[str] = set()
    bindings: list[tuple[User, str, str]] = []
    for entry in entries:
        if entry.left:
            continue
        present.add(entry.external_id)
        if entry.external_id in bound:
            report.already_bound += 1
            continue
        matched, how = None, ""
        for key, index, label in (
            (entry.mobile, by_mobile, "mobile"),
            (entry.job_number, by_job, "job number"),
        ):
            candidates = index.get(key or "", [])
            if len(candidates) == 1:
                matched, how = candidates[0], label
                break
            if len(candidates) > 1:
                report.unmatched.append((entry, f"{label} matches {len(candidates)} accounts"))
                break
        else:
            report.unmatched.append((entry, "no account with this mobile or job number"))
        if matched is None:
            continue
        if matched.id in bound_users:
            report.unmatched.append(
                (entry, f"{matched.username} is bound to another {provider} id")
            )
            continue
        bound_users.add(matched.id)
        bindings.append((matched, provider, entry.external_id))
        report.bound.append((matched.username, entry.external_id, how))
    await people.bind_external_identities(session, bindings)

    leavers = [u for ext, u in bound.items() if ext not in present and u.is_active]
    if leavers and not allow_many_leavers and len(leavers) > MAX_LEAVER_SHARE * len(bound):
        raise DomainError(
            ErrorCode.CONFLICT,
            f"{len(leavers)} 名已绑定人员不在通讯录中，超过 {MAX_LEAVER_SHARE:.0%}：请检查应用的通讯录权限范围"
            f" / {len(leavers)} of {len(bound)} bound people are missing from the directory;"
            " check the app's directory scope (or allow it explicitly)",
        )
    for user in leavers:
        await _hand_over(session, user, report)
        await people.deactivate_user(
            session, user, actor=actor, reason=f"left ({provider} directory)"
        )
        report.deactivated.append(user.username)
    return report


async def _hand_over(session: AsyncSession, user: User, report: SyncReport) -> None:
    """The leaver's pending tasks to the head of their department."""
    tasks = list(
        (
            await session.execute(
                sa.select(ApprovalTask)
                .where(
                    col(ApprovalTask.assignee_id) == user.id,
                    col(ApprovalTask.status) == TaskStatus.PENDING,
                )
                .order_by(col(ApprovalTask.id))
            )
        ).scalars()
    )
    if not tasks:
        return
    head = await people.department_head(session, user.department_id)
    # The hand-over is the leaver's own transfer (转交), made for them by the sync.
    on_behalf = Actor.from_user(user, via="directory")
    for task in tasks:
        if head is None or head.id == user.id or not head.is_active:
            report.not_handed_over.append((task.id or 0, user.username))
            continue
        try:
            await approvals.transfer_task(
                session,
                task,
                actor=on_behalf,
                to=head,
                comment="离职交接，由通讯录同步转交科主任 / left: handed to the department head",
            )
        except DomainError:
            report.not_handed_over.append((task.id or 0, user.username))
            continue
        report.handed_over.append((task.id or 0, user.username, head.username))
