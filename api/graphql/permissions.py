"""Declared permissions. Every query field and mutation names one of these.

A test walks the schema and fails when a root field has none, so a new field cannot be
exposed by accident.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from strawberry.permission import BasePermission

from api.models.people import Role


class Public(BasePermission):
    """Open to anyone (login). Named so the schema test can see the choice was made."""

    message = ""

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        return True


class IsAuthenticated(BasePermission):
    message = "请先登录 / please sign in"
    error_extensions = {"code": "UNAUTHENTICATED"}

    def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
        ctx = info.context
        # One instance per field (see HasRole): reset the message every time.
        self.message = ctx.auth_error.message if ctx.actor is None and ctx.auth_error is not None else IsAuthenticated.message
        return ctx.actor is not None


@cache
def HasRole(*roles: Role | str) -> type[BasePermission]:  # noqa: N802 - reads as a class
    """Signed in and holding one of `roles` (admin always passes)."""
    wanted = frozenset(str(r) for r in roles) | {Role.ADMIN.value}

    class _HasRole(BasePermission):
        message = "无权执行此操作 / not allowed for your role"
        error_extensions = {"code": "FORBIDDEN"}

        def has_permission(self, source: Any, info: Any, **kwargs: Any) -> bool:
            # The schema keeps one instance per field: set both outcomes every time, or a
            # signed-out request would leave UNAUTHENTICATED for every later refusal.
            actor = info.context.actor
            if actor is None:
                self.message = "请先登录 / please sign in"
                self.error_extensions = {"code": "UNAUTHENTICATED"}
                return False
            self.message = "无权执行此操作 / not allowed for your role"
            self.error_extensions = {"code": "FORBIDDEN"}
            return bool(actor.roles & wanted)

    _HasRole.__name__ = "HasRole_" + "_".join(sorted(wanted))
    _HasRole.roles = wanted  # type: ignore[attr-defined]
    return _HasRole


STAFF_ROLES = tuple(r for r in Role if r is not Role.PATIENT)
IsStaff = HasRole(*STAFF_ROLES)
IsPatient = HasRole(Role.PATIENT)
