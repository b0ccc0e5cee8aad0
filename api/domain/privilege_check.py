""" "May surgeon X perform procedure Y at time T": the answer other systems (the
anaesthesia system 手麻, the HIS) ask for before scheduling or starting an operation.

They call with a service token of their own, not a user's: the setting
`privilege_check_tokens` maps each calling system's name to the SHA-256 (hex) of its
token, so the tokens themselves are never stored. Every call, refused ones included, is a
row of the access log (resource `privilegeCheck`).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.domain.privileges import GRADE_WORDS, check_privilege, procedure_by_code
from api.models.audit import AccessLog
from api.models.people import User
from api.models.privileges import PrivilegeGrant
from api.settings import Settings

GRANTED = "granted"
SUSPENDED = "suspended"
REVOKED = "revoked"
NOT_GRANTED = "not_granted"
UNKNOWN_SURGEON = "unknown_surgeon"
UNKNOWN_PROCEDURE = "unknown_procedure"

ANSWER_TEXT = {
    GRANTED: "已授权 / granted",
    SUSPENDED: "授权已暂停 / privileges suspended",
    REVOKED: "授权已撤销 / privilege revoked",
    NOT_GRANTED: "未获授权 / not granted",
    UNKNOWN_SURGEON: "无此医师 / no such surgeon",
    UNKNOWN_PROCEDURE: "手术目录中无此手术 / no such procedure in the catalog",
}


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def service_client(settings: Settings, token: str | None) -> str | None:
    """The calling system's name for a valid token, else None. Every configured digest
    is compared (in constant time), so the answer's timing tells nothing about which."""
    if not token:
        return None
    digest = token_digest(token)
    found: str | None = None
    for name, expected in sorted(settings.privilege_check_tokens.items()):
        if hmac.compare_digest(digest.encode(), str(expected).strip().lower().encode()):
            found = name
    return found


@dataclass
class PrivilegeAnswer:
    allowed: bool
    status: str
    surgeon: User | None = None
    procedure_code: str = ""
    procedure_name: str | None = None
    grade: int | None = None
    grant_id: int | None = None
    valid_until: datetime | None = None
    reason: str | None = None

    def as_json(self, at: datetime) -> dict[str, object]:
        return {
            "allowed": self.allowed,
            "status": self.status,
            "message": ANSWER_TEXT[self.status],
            "surgeon": (
                {
                    "username": self.surgeon.username,
                    "name": self.surgeon.display_name,
                    "jobNumber": self.surgeon.job_number,
                }
                if self.surgeon
                else None
            ),
            "procedure": (
                {"code": self.procedure_code, "name": self.procedure_name, "grade": self.grade}
                if self.procedure_name is not None
                else None
            ),
            "gradeText": GRADE_WORDS.get(self.grade or 0),
            "at": at.isoformat(),
            "grantId": self.grant_id,
            "validUntil": self.valid_until.isoformat() if self.valid_until else None,
            "reason": self.reason,
        }


async def surgeon_by_reference(session: AsyncSession, reference: str) -> User | None:
    """A surgeon named by username or job number (工号, what the HIS knows)."""
    stmt = sa.select(User).where(
        sa.or_(col(User.username) == reference, col(User.job_number) == reference),
        col(User.is_active).is_(True),
    )
    return (await session.execute(stmt.limit(1))).scalar_one_or_none()


async def may_perform(
    session: AsyncSession, *, surgeon: str, procedure: str, at: datetime
) -> PrivilegeAnswer:
    user = await surgeon_by_reference(session, surgeon.strip())
    if user is None or user.id is None:
        return PrivilegeAnswer(False, UNKNOWN_SURGEON, procedure_code=procedure)
    found = await procedure_by_code(session, procedure.strip())
    if found is None:
        return PrivilegeAnswer(False, UNKNOWN_PROCEDURE, user, procedure_code=procedure)
    answer = PrivilegeAnswer(False, NOT_GRANTED, user, found.code, found.name, found.grade)
    check = await check_privilege(session, user.id, found, at)
    if check.suspension is not None:
        answer.status = SUSPENDED
        answer.reason = check.suspension.reason
        return answer
    if check.grant is not None:
        answer.allowed = True
        answer.status = GRANTED
        answer.grant_id = check.grant.id
        answer.valid_until = check.grant.valid_until
        return answer
    # Not held: say "revoked" when a grant that covered it was revoked before `at`.
    revoked = (
        await session.execute(
            sa.select(PrivilegeGrant)
            .where(
                col(PrivilegeGrant.surgeon_id) == user.id,
                col(PrivilegeGrant.scope) == "surgery",
                col(PrivilegeGrant.revoked_at).is_not(None),
                col(PrivilegeGrant.revoked_at) <= at,
                col(PrivilegeGrant.granted_at).is_not(None),
                sa.or_(
                    col(PrivilegeGrant.procedure_code) == found.code,
                    col(PrivilegeGrant.max_grade) >= found.grade,
                ),
            )
            .order_by(col(PrivilegeGrant.revoked_at).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if revoked is not None:
        answer.status = REVOKED
        answer.grant_id = revoked.id
        answer.reason = revoked.revoke_reason
    return answer


async def log_check(
    session: AsyncSession,
    *,
    client: str | None,
    address: str | None,
    request_id: str | None,
    query: dict[str, object],
    outcome: str,
) -> None:
    """One access-log row per call (who asked, from where, what, and the answer)."""
    session.add(
        AccessLog(
            actor_id=None,
            action="check" if client else "refused",
            resource="privilegeCheck",
            detail={"client": client, "query": query, "outcome": outcome},
            ip=address,
            request_id=request_id,
        )
    )
    await session.flush()
