"""Declared permissions. Every query field and mutation names one of these.

A test walks the schema and fails when a root field has none, so a new field cannot be
exposed by accident.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from strawberry.permission import BasePermission

from api.auth import PASSWORD_CHANGE_REQUIRED
from api.errors import DomainError, ErrorCode
from api.models.people import Role


class Public(BasePermission):
    """Open to anyone (login). Named so the schema test can see the choice was made."""

    message = ""

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return True


# What a token signed in with an initial password may do: say who it is, change the
# password, sign out.
WHILE_PASSWORD_CHANGE_REQUIRED = frozenset({"me", "changePassword", "logout", "logoutEverywhere"})


def require_signed_in(info: Any) -> None:
    """Raise UNAUTHENTICATED (with the token's own problem, if any) for an anonymous call.

    Raised rather than reported through `message`: strawberry keeps one permission
    instance per field, so per-request state must never be stored on it.
    """
    if info.context.actor is None:
        raise info.context.auth_error or DomainError(
            ErrorCode.UNAUTHENTICATED, "请先登录 / please sign in"
        )
    if (
        PASSWORD_CHANGE_REQUIRED in info.context.actor.extra
        and info.field_name not in WHILE_PASSWORD_CHANGE_REQUIRED
    ):
        raise DomainError(
            ErrorCode.PASSWORD_CHANGE_REQUIRED,
            "请先修改初始密码 / change your initial password first",
        )


class IsAuthenticated(BasePermission):
    message = "请先登录 / please sign in"
    error_extensions = {"code": "UNAUTHENTICATED"}

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        require_signed_in(info)
        return True


@cache
def HasRole(*roles: Role | str) -> type[BasePermission]:  # noqa: N802 - reads as a class
    """Signed in and holding one of `roles` (admin always passes)."""
    wanted = frozenset(str(r) for r in roles) | {Role.ADMIN.value}

    class _HasRole(BasePermission):
        message = "无权执行此操作 / not allowed for your role"
        error_extensions = {"code": "FORBIDDEN"}

        def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
            require_signed_in(info)
            return bool(info.context.actor.roles & wanted)

    _HasRole.__name__ = "HasRole_" + "_".join(sorted(wanted))
    _HasRole.roles = wanted  # type: ignore[attr-defined]
    return _HasRole


STAFF_ROLES = tuple(r for r in Role if r is not Role.PATIENT)
IsStaff = HasRole(*STAFF_ROLES)
IsPatient = HasRole(Role.PATIENT)
