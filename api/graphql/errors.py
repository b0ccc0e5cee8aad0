"""Turn unexpected errors into a masked INTERNAL error; domain errors pass through.

DomainError carries `extensions` (code, field), which graphql-core copies onto the error.
Anything else could carry patient data in its message, so it is logged with the request id
and replaced by a generic message.
"""

from __future__ import annotations

import logging
import re

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from api.errors import DomainError

log = logging.getLogger("bedside.graphql")


_VARIABLE = re.compile(r"Variable '\$(\w+)'")
_AT_FIELD = re.compile(r"at '(?:\w+\.)?([\w.]+)'")


def _field_of(error: GraphQLError) -> dict[str, str]:
    if error.message.startswith("Syntax Error"):
        return {"field": "query"}  # the document itself
    match = _AT_FIELD.search(error.message) or _VARIABLE.search(error.message)
    return {"field": match.group(1)} if match else {}


# graphql-core quotes the offending input in its messages ("got invalid value '周建国'"):
# the value may be a patient's name or ID number, so it is cut out before the message is
# returned or logged. The variable/field name and the type stay.
_SCRUBS = (
    (re.compile(r"got invalid value .*?; ", re.S), "got invalid value; "),
    (re.compile(r"(cannot represent[^:;]*?): .*?(?=; |$)", re.S), r"\1"),
    (re.compile(r"found .*?(?=; |$)", re.S), "found a value of another type"),
    (re.compile(r"(Invalid isoformat string|is not a valid)[^;]*", re.S), "invalid format"),
)


_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def strip_suggestions(message: str) -> str:
    """graphql-core's "Did you mean 'x', 'y'?" hints, cut out."""
    return _SUGGESTION.sub("", message)


def scrub_input_values(message: str) -> str:
    for pattern, replacement in _SCRUBS:
        message = pattern.sub(replacement, message)
    return message


def log_graphql_errors(errors: list[GraphQLError]) -> None:
    """One line per error, by code and path only: never the message's input values."""
    for error in errors:
        original = error.original_error
        if original is not None and not isinstance(original, DomainError | GraphQLError):
            continue  # unexpected: logged with its traceback when masked (anonymise_error)
        code = (error.extensions or {}).get("code") or "VALIDATION"
        log.info("graphql error", extra={"fields": {"code": code, "path": error.path}})


UNAVAILABLE_MESSAGE = (
    "数据库暂时不可用，请稍后重试 / database temporarily unavailable, please retry"
)


def is_transient_outage(exc: BaseException | None) -> bool:
    """A lost or refused database connection (restart, failover), not a bug."""
    import asyncpg
    from sqlalchemy import exc as sa_exc

    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
            return True
        if isinstance(
            exc, sa_exc.TimeoutError
        ):  # every pooled connection busy: overload, retry later
            return True
        if isinstance(
            exc,
            asyncpg.exceptions.PostgresConnectionError
            | asyncpg.exceptions.CannotConnectNowError
            | asyncpg.exceptions.AdminShutdownError
            | asyncpg.exceptions.ConnectionDoesNotExistError
            | asyncpg.exceptions.InterfaceError
            | ConnectionError
            | TimeoutError,
        ):
            return True
        if (
            isinstance(exc, OSError) and exc.errno is not None and exc.errno in (111, 104, 32)
        ):  # refused, reset, broken pipe
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def _should_mask(error: GraphQLError) -> bool:
    original = error.original_error
    if original is None or isinstance(original, DomainError | GraphQLError):
        return False
    return True


class MaskUnexpectedErrors(MaskErrors):
    def __init__(self) -> None:
        super().__init__(
            should_mask_error=_should_mask, error_message="服务器内部错误 / internal error"
        )

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed = super()._process_errors(errors)
        for error in processed:
            # Errors from the document itself (bad variable, malformed DateTime, unknown
            # field) have no code of their own: they are input errors.
            if not (error.extensions or {}).get("code"):
                error.extensions = {
                    **(error.extensions or {}),
                    "code": "VALIDATION",
                    **_field_of(error),
                }
            if not isinstance(error.original_error, DomainError):
                error.message = scrub_input_values(error.message)
        return processed

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        if is_transient_outage(error.original_error):
            # The database restarting or unreachable: the client may retry (idempotency
            # keys make that safe); the transaction was rolled back, nothing half-written.
            log.warning(
                "database unavailable in %s: %s", error.path, type(error.original_error).__name__
            )
            masked = GraphQLError(UNAVAILABLE_MESSAGE, nodes=error.nodes, path=error.path)
            masked.extensions = {"code": "TEMPORARILY_UNAVAILABLE"}
            return masked
        log.error("unexpected error in %s", error.path, exc_info=error.original_error)
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL"}
        return masked


_final_mask = MaskUnexpectedErrors()


def mask_escaped_errors(errors: list[GraphQLError] | None) -> list[GraphQLError] | None:
    """The last word before errors leave the server.

    An exception raised outside a resolver's own error handling (strawberry turns it
    into an error that skips the extensions) would otherwise reach the client raw, with
    its SQL and parameters. Errors that already carry a code pass unchanged.
    """
    if not errors:
        return errors
    escaped = [e for e in errors if not (e.extensions or {}).get("code")]
    if not escaped:
        return errors
    return [(_final_mask._process_errors([e])[0] if e in escaped else e) for e in errors]
