"""Login throttling per address and revoked single tokens (shared by every API process)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from api.models.base import ts_field


class LoginThrottle(SQLModel, table=True):
    """Failed logins from one client address in the current window (fleet-wide)."""

    __tablename__ = "login_throttle"

    address: str = Field(primary_key=True, max_length=64)
    window_started_at: datetime = ts_field()
    failures: int = Field(default=0)


class RevokedToken(SQLModel, table=True):
    """A single token (by its jti) signed out before it expires; kept until it would expire."""

    __tablename__ = "revoked_token"

    jti: str = Field(primary_key=True, max_length=64)
    user_id: int = Field(index=True)
    expires_at: datetime = ts_field(index=True)
