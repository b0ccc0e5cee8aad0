"""Declared permissions. Every query field and mutation names one of these.

A test walks the schema and fails when a root field has none, so a new field cannot be
exposed by accident.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from strawberry.permission import BasePermission

from api.errors import DomainError, ErrorCode
from api.models.people import Role


class Public(BasePermission):
    """Open to anyone (login). Named so the schema test can see the choice was made."""

    message = ""

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return True


SIGN_IN = "请先登录 / please sign in"


def _require_signed_in(ctx: Any) -> None:
    """Raise UNAUTHENTICATED for this request only.

    Strawberry keeps one permission instance per field for the life of the process, so
    the refusal must not be written onto the instance (one anonymous call would turn
    every later FORBIDDEN into UNAUTHENTICATED and sign users out)."""
    if ctx.actor is None:
        raise ctx.auth_error or DomainError(ErrorCode.UNAUTHENTICATED, SIGN_IN)


class IsAuthenticated(BasePermission):
    message = SIGN_IN
    error_extensions = {"code": "UNAUTHENTICATED"}

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        _require_signed_in(info.context)
        return True


@cache
def HasRole(*roles: Role | str) -> type[BasePermission]:  # noqa: N802 - reads as a class
    """Signed in and holding one of `roles` (admin always passes)."""
    wanted = frozenset(str(r) for r in roles) | {Role.ADMIN.value}

    class _HasRole(BasePermission):
        message = "无权执行此操作 / not allowed for your role"
        error_extensions = {"code": "FORBIDDEN"}

        def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
            _require_signed_in(info.context)
            return bool(info.context.actor.roles & wanted)

    _HasRole.__name__ = "HasRole_" + "_".join(sorted(wanted))
    _HasRole.roles = wanted  # type: ignore[attr-defined]
    return _HasRole


STAFF_ROLES = tuple(r for r in Role if r is not Role.PATIENT)
IsStaff = HasRole(*STAFF_ROLES)
IsPatient = HasRole(Role.PATIENT)
