"""Passwords, tokens and the actor a request speaks for.

Passwords are argon2id hashes. Tokens are HS256 JWTs carrying the user id and the user's
token version: bumping `user.token_version` revokes every token the user holds.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncEngine

from api.errors import DomainError, ErrorCode
from api.models.people import Role, User
from api.models.security import RevokedToken
from api.settings import Settings

TOKEN_ALGORITHM = "HS256"
# Actor.extra key of a token that may only change the initial password.
PASSWORD_CHANGE_REQUIRED = "password_change_required"


@dataclass(frozen=True)
class Actor:
    """Who is acting: loaded fresh from the database for every request."""

    user_id: int
    username: str
    roles: frozenset[str]
    department_id: int | None
    display_name: str = ""
    via: str = "web"  # web | dingtalk | wecom | wechat_oa | sync | hl7 | system
    ip: str | None = None
    request_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def has_role(self, *roles: str | Role) -> bool:
        return any(str(r) in self.roles for r in roles)

    @property
    def is_admin(self) -> bool:
        return Role.ADMIN in self.roles

    @classmethod
    def from_user(
        cls,
        user: User | Any,
        *,
        via: str = "web",
        ip: str | None = None,
        request_id: str | None = None,
    ) -> Actor:
        """From a user, or a row with the same columns (the per-request sign-in check)."""
        assert user.id is not None
        return cls(
            user_id=user.id,
            username=user.username,
            roles=frozenset(user.roles or []),
            department_id=user.department_id,
            display_name=user.display_name,
            via=via,
            ip=ip,
            request_id=request_id,
        )


SYSTEM_ACTOR = Actor(
    user_id=0, username="system", roles=frozenset({"system"}), department_id=None, via="system"
)


class PasswordHashing:
    def __init__(self, settings: Settings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_cost_kib,
            parallelism=settings.argon2_parallelism,
        )

        self._dummy_hash: str | None = None

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Check `password` against `password_hash`. Without a hash (an unknown username,
        an account with no password) the password is still checked, against a dummy hash
        of the same cost, so the answer takes as long as for a real account: the time
        does not tell which usernames exist."""
        if not password_hash:
            if self._dummy_hash is None:
                self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
            try:
                self._hasher.verify(self._dummy_hash, password)
            except (VerificationError, InvalidHashError):
                pass
            return False
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def issue_token(
    settings: Settings,
    user: User,
    *,
    now: datetime | None = None,
    password_change_required: bool = False,
) -> str:
    """A bearer token. `password_change_required` (a password sign-in with an initial
    password) marks a token that may only change the password (PASSWORD_CHANGE_REQUIRED)."""
    now = now or datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": str(user.id),
        "ver": user.token_version,
        "jti": uuid.uuid4().hex,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=settings.token_ttl_seconds)).timestamp()),
    }
    if password_change_required:
        claims["pwc"] = 1
    return jwt.encode(claims, settings.effective_secret_key, algorithm=TOKEN_ALGORITHM)


def _unauthenticated(message: str = "请重新登录 / please sign in again") -> DomainError:
    return DomainError(ErrorCode.UNAUTHENTICATED, message)


def _verified_claims(settings: Settings, token: str) -> tuple[int, int, str | None, bool]:
    """(user id, token version, jti, password change required) of a token whose signature
    and expiry check out."""
    try:
        claims = jwt.decode(token, settings.effective_secret_key, algorithms=[TOKEN_ALGORITHM])
        return (
            int(claims["sub"]),
            int(claims.get("ver", 0)),
            claims.get("jti"),
            bool(claims.get("pwc")),
        )
    except (jwt.PyJWTError, KeyError, ValueError) as exc:
        raise _unauthenticated("登录已过期或无效 / token expired or invalid") from exc


async def actor_for_token(
    engine: AsyncEngine,
    settings: Settings,
    token: str,
    *,
    ip: str | None = None,
    request_id: str | None = None,
) -> Actor:
    """The actor of a request's bearer token, checked against the database on every request
    (deactivation, logout everywhere and single-token sign-out take effect at once, in
    every process).

    One statement reads the user and whether the token was signed out, outside any
    transaction: a single SELECT sees one snapshot either way, and the request then needs
    no BEGIN and ROLLBACK around it, on a connection it gives back before its own work."""
    user_id, version, jti, password_change = _verified_claims(settings, token)
    revoked = sa.exists().where(RevokedToken.jti == jti) if jti else sa.false()
    stmt = sa.select(
        User.id,
        User.username,
        User.display_name,
        User.department_id,
        User.roles,
        User.is_active,
        User.token_version,
        revoked.label("revoked"),
    ).where(User.id == user_id)
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        row = (await conn.execute(stmt)).first()
    if row is None or not row.is_active or row.token_version != version or row.revoked:
        raise _unauthenticated("登录已失效 / token revoked")
    actor = Actor.from_user(row, ip=ip, request_id=request_id)
    if password_change:
        actor.extra[PASSWORD_CHANGE_REQUIRED] = "1"
    return actor


async def authenticate(services: Any, request: Any) -> tuple[Actor | None, DomainError | None]:
    """The actor of an HTTP request's `Authorization: Bearer` token (None without one), or
    the reason the token is refused. `services`: the app's Services; `request`: Starlette's."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("bearer "):
        return None, None
    client = request.client.host if request.client else None
    try:
        actor = await actor_for_token(
            services.db.engine,
            services.settings,
            header[7:].strip(),
            ip=client,
            request_id=request.scope.get("state", {}).get("request_id"),
        )
    except DomainError as exc:
        return None, exc
    return actor, None


def token_claims(settings: Settings, token: str) -> dict[str, object]:
    """The verified claims of a token (jti, exp) — for signing out that one token."""
    try:
        return jwt.decode(token, settings.effective_secret_key, algorithms=[TOKEN_ALGORITHM])
    except jwt.PyJWTError as exc:
        raise _unauthenticated("登录已过期或无效 / token expired or invalid") from exc
