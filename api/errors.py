"""Errors that the domain raises and every adapter shows the same way.

GraphQL puts `code` and `field` into `extensions`; bots turn them into a card text;
sync records them as the reason a mutation was rejected. Messages are Chinese first with
English beside, and never carry patient data.
"""

from __future__ import annotations

from enum import StrEnum

from api.texts import split


class ErrorCode(StrEnum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    VALIDATION = "VALIDATION"
    CONFLICT = "CONFLICT"
    ALREADY_DECIDED = "ALREADY_DECIDED"
    PRECHECK_FAILED = "PRECHECK_FAILED"
    INSTANCE_CLOSED = "INSTANCE_CLOSED"
    PRIVILEGE_BLOCKED = "PRIVILEGE_BLOCKED"
    NOT_STARTABLE = "NOT_STARTABLE"  # the process is submitted from its own area (surgery …)
    NO_ASSIGNEE = "NO_ASSIGNEE"  # an approval step's rule names nobody (org data to fix)
    RATE_LIMITED = "RATE_LIMITED"
    IDENTITY_MISMATCH = "IDENTITY_MISMATCH"  # a bedside path tried to change HIS identity fields
    ALREADY_BOUND = "ALREADY_BOUND"  # the patient's archive is bound to another WeChat openid
    ACCOUNT_LOCKED = "ACCOUNT_LOCKED"
    PASSWORD_CHANGE_REQUIRED = "PASSWORD_CHANGE_REQUIRED"  # an initial password, not changed yet
    NOT_PAID = "NOT_PAID"
    FULLY_BOOKED = "FULLY_BOOKED"
    VERSION_NOT_SUPPORTED = "VERSION_NOT_SUPPORTED"
    # offline sync
    RECORD_DELETED = "RECORD_DELETED"
    ATTACHMENT_PENDING = "ATTACHMENT_PENDING"
    OUT_OF_ORDER = "OUT_OF_ORDER"
    TEMPORARILY_UNAVAILABLE = "TEMPORARILY_UNAVAILABLE"
    INTERNAL = "INTERNAL"


class DomainError(Exception):
    """A rule said no. `message` is shown to the user as is."""

    def __init__(
        self,
        code: ErrorCode | str,
        message: str,
        *,
        field: str | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = str(code)
        self.message = message
        self.field = field
        self.details = details or {}
        # graphql-core copies an original error's `extensions` onto the GraphQL error.
        self.extensions: dict[str, object] = {
            "code": self.code,
            **({"field": field} if field else {}),
            # The message in each language, so no client takes "中文 / English" apart.
            "messages": split(message).as_dict(),
            **self.details,
        }


def not_found(what: str, what_en: str) -> DomainError:
    return DomainError(ErrorCode.NOT_FOUND, f"{what}不存在 / {what_en} not found")


def forbidden(reason: str = "无权执行此操作 / not allowed") -> DomainError:
    return DomainError(ErrorCode.FORBIDDEN, reason)


def invalid(field: str, reason: str) -> DomainError:
    return DomainError(ErrorCode.VALIDATION, reason, field=field)
