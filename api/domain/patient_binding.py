"""Binding a WeChat openid to a patient archive (first use of the Official Account).

The patient proves who they are with name, ID number and phone; the two numbers are
matched through the archive's keyed lookup hashes, never decrypted. Five failed tries per
openid per hour, then RATE_LIMITED. A patient without a Bedside login gets one (role
patient) so the PWA's patient pages can act for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from api.audit import append_event
from api.auth import Actor
from api.crypto import FieldCipher
from api.domain.patients import CORRECTORS, check_reason, history_stream
from api.domain.people import bind_external_identity, external_id_for, user_for_external_id
from api.errors import DomainError, ErrorCode, forbidden, invalid
from api.models.base import utcnow
from api.models.bots import BotBindingAttempt
from api.models.patients import Patient
from api.models.people import ExternalIdentity, Role, User

PROVIDER = "wechat_oa"
MAX_FAILURES = 5
FAILURE_WINDOW = timedelta(hours=1)
ALREADY_BOUND = (
    "该患者档案已绑定其他微信账号。请本人携身份证到服务台核验后解绑，再重新绑定 / this "
    "patient is already bound to another WeChat account: bring your ID card to the service "
    "desk to have it unbound, then bind again"
)
NO_MATCH = "信息与档案不符，请核对姓名、身份证号和手机号 / the details do not match an archive: check name, ID number and phone"


@dataclass
class BindingOutcome:
    """Like a login: a failure is still a write (the attempt), returned for the caller to commit."""

    user: User | None
    error: DomainError | None = None


async def bind_openid_to_patient(
    session: AsyncSession,
    cipher: FieldCipher,
    *,
    openid: str,
    name: str,
    id_number: str,
    phone: str,
    actor: Actor,
    now: datetime | None = None,
) -> BindingOutcome:
    now = now or utcnow()
    name, id_number, phone = name.strip(), id_number.strip(), phone.strip()
    for field, value in (("name", name), ("idNumber", id_number), ("phone", phone)):
        if not value or len(value) > 64:
            raise invalid(field, "请填写完整 / required (at most 64 characters)")
    existing = await user_for_external_id(session, PROVIDER, openid)
    if existing is not None:
        return BindingOutcome(existing)
    failures = await session.scalar(
        sa.select(sa.func.count())
        .select_from(BotBindingAttempt)
        .where(BotBindingAttempt.external_id == openid, BotBindingAttempt.at > now - FAILURE_WINDOW)
    )
    if (failures or 0) >= MAX_FAILURES:
        return BindingOutcome(
            None,
            DomainError(
                ErrorCode.RATE_LIMITED,
                "尝试次数过多，请一小时后再试 / too many tries, try again in an hour",
            ),
        )
    patient = (
        await session.execute(
            sa.select(Patient).where(
                Patient.id_number_hash == cipher.lookup_hash(id_number),
                Patient.phone_hash == cipher.lookup_hash(phone),
                Patient.name == name,
            )
        )
    ).scalar_one_or_none()
    if patient is None:
        session.add(BotBindingAttempt(external_id=openid, at=now))
        return BindingOutcome(None, DomainError(ErrorCode.VALIDATION, NO_MATCH, field="idNumber"))
    user = await session.get(User, patient.user_id) if patient.user_id else None
    if user is not None and user.id is not None:
        bound = await external_id_for(session, user.id, PROVIDER)
        if bound is not None and bound != openid:
            # Name, ID number and phone are not enough to move an archive to another WeChat
            # account: the desk checks the person and unbinds (`unbind_patient_openid`).
            session.add(BotBindingAttempt(external_id=openid, at=now))
            return BindingOutcome(None, DomainError(ErrorCode.ALREADY_BOUND, ALREADY_BOUND))
    if user is None:
        user = User(
            username=f"patient.{patient.mrn.lower()}",
            display_name=patient.name,
            roles=[Role.PATIENT],
        )
        session.add(user)
        await session.flush()
        patient.user_id = user.id
    await bind_external_identity(session, user, provider=PROVIDER, external_id=openid)
    return BindingOutcome(user)


async def unbind_patient_openid(
    session: AsyncSession, patient: Patient, *, actor: Actor, reason: str
) -> int:
    """解绑: the service desk (medical affairs, an admin) removes the archive's Official Account
    binding after checking the person; the patient's sessions end. Recorded in the
    patient's history. Returns how many bindings were removed."""
    if not actor.has_role(*CORRECTORS) or actor.has_role(Role.PATIENT):
        raise forbidden("只有医务处或管理员可以解绑 / only medical affairs or an admin may unbind")
    reason = check_reason(reason)
    if patient.user_id is None:
        return 0
    rows = list(
        (
            await session.execute(
                sa.select(ExternalIdentity).where(
                    ExternalIdentity.user_id == patient.user_id,
                    ExternalIdentity.provider == PROVIDER,
                )
            )
        ).scalars()
    )
    if not rows:
        return 0
    for row in rows:
        await session.delete(row)
    user = await session.get(User, patient.user_id)
    if user is not None:
        user.token_version += 1  # whoever held the account is signed out
    await session.flush()
    assert patient.id is not None
    await append_event(
        session,
        history_stream(patient.id),
        "wechat_unbound",
        actor=actor,
        data={
            "patient_id": patient.id,
            "reason": reason,
            "openids": [row.external_id[:6] + "…" for row in rows],
        },
    )
    return len(rows)
