"""Every root query and mutation, called by every demo role, is allowed or denied exactly
as its declared `permission_classes` say.

The cases come from the schema, so a new field is covered the day it is added; a field
whose rule the matrix cannot read fails here (and a field without a rule fails
tests/test_schema_permissions.py). Calls carry minimal well-typed arguments (id 1, "x"),
enough to get past validation to the permission check; a permitted call may still fail
for domain reasons (NOT_FOUND, VALIDATION, ...), which is fine — only the permission
verdict is checked, plus that nothing comes back as INTERNAL.
"""

from __future__ import annotations

from typing import Any

from api.graphql.permissions import IsAuthenticated, Public
from tests.conftest import GraphQLClient, error_code
from tests.security.schema_cases import FieldCall, root_field_calls

# username -> what the role model calls them (None: anonymous)
DEMO_ROLES: dict[str, str | None] = {
    "admin": "admin",
    "surgeon": "dr.li",
    "dept_head": "chief.wang",
    "medical_affairs": "ma.zhao",
    "vice_president": "vp.chen",
    "therapist": "pt.sun",
    "dept_head_rehab": "chief.he",
    "patient": "patient.zhou",
    "anonymous": None,
}

# Calls that end the caller's session run last, so they do not disturb the others.
SESSION_ENDING = ("logout", "changePassword")


def expected_allowed(call: FieldCall, roles: frozenset[str] | None) -> bool:
    """What the declared permission classes promise (all of them must pass)."""
    assert call.permission_classes, f"{call.name} declares no permission_classes"
    verdict = True
    for permission in call.permission_classes:
        if permission is Public:
            continue
        if permission is IsAuthenticated:
            verdict &= roles is not None
        elif hasattr(permission, "roles"):
            verdict &= roles is not None and bool(roles & permission.roles)
        else:
            raise AssertionError(
                f"{call.operation} {call.name}: permission class {permission.__name__} is unknown to the "
                "authorization matrix; teach expected_allowed() what it means"
            )
    return verdict


def _permission_errors(body: dict[str, Any], call: FieldCall) -> list[dict[str, Any]]:
    """Errors at the field that are permission verdicts (not domain errors)."""
    if all(p is Public for p in call.permission_classes):
        return []  # nothing to refuse; login's own UNAUTHENTICATED is a wrong password
    found = []
    for error in body.get("errors") or []:
        if (error.get("path") or [None])[0] != call.name:
            continue
        code = error_code(error)
        if code == "UNAUTHENTICATED":
            found.append(error)
        elif code == "FORBIDDEN" and any(
            error["message"] == getattr(p, "message", None) for p in call.permission_classes
        ):
            found.append(error)
    return found


def _ordered(calls: list[FieldCall]) -> list[FieldCall]:
    return sorted(
        calls,
        key=lambda c: (
            c.operation != "query",
            any(s.lower() in c.name.lower() for s in SESSION_ENDING),
        ),
    )


async def test_every_root_field_obeys_the_role_model(gql: GraphQLClient) -> None:
    calls = _ordered(root_field_calls())
    assert len(calls) > 20
    clients: dict[str, GraphQLClient] = {}
    roles: dict[str, frozenset[str] | None] = {}
    for label, username in DEMO_ROLES.items():
        if username is None:
            clients[label], roles[label] = gql, None
            continue
        clients[label] = await gql.as_user(username)
        me = await clients[label].data("{ me { roles } }")
        roles[label] = frozenset(me["me"]["roles"])

    mismatches: list[str] = []
    internal: list[str] = []
    for call in calls:
        for label, username in DEMO_ROLES.items():
            allowed = expected_allowed(call, roles[label])
            body = await clients[label].execute(call.document, call.variables)
            verdicts = _permission_errors(body, call)
            if verdicts and username is not None and error_code(verdicts[0]) == "UNAUTHENTICATED":
                # An earlier call (logoutEverywhere) revoked the token: sign in again once.
                clients[label] = await gql.as_user(username)
                body = await clients[label].execute(call.document, call.variables)
                verdicts = _permission_errors(body, call)
            if allowed and verdicts:
                mismatches.append(
                    f"{label} ({username}) was refused {call.operation} {call.name}: {verdicts[0]['message']}"
                )
            if not allowed:
                wanted = "UNAUTHENTICATED" if username is None else "FORBIDDEN"
                if not verdicts or error_code(verdicts[0]) != wanted:
                    mismatches.append(
                        f"{label} ({username}) was not refused {call.operation} {call.name} ({wanted}): {body}"
                    )
                elif (body.get("data") or {}).get(call.name) is not None:
                    mismatches.append(f"{label} got data from refused {call.name}")
            for error in body.get("errors") or []:
                if error_code(error) == "INTERNAL":
                    internal.append(f"{label} {call.operation} {call.name}: INTERNAL")
    assert mismatches == [], "\n".join(mismatches)
    assert internal == [], "\n".join(internal)


def test_matrix_reads_every_declared_rule() -> None:
    """Every root field's rule is one the matrix understands (Public, IsAuthenticated, HasRole)."""
    for call in root_field_calls():
        expected_allowed(call, frozenset({"admin"}))
        expected_allowed(call, None)


async def test_an_anonymous_refusal_does_not_change_later_verdicts(gql: GraphQLClient) -> None:
    """Permission objects live as long as the process: a refusal must not stick to them."""
    query = "{ surgeryCatalog { code } }"
    assert error_code(await gql.error(query)) == "UNAUTHENTICATED"
    patient = await gql.as_user("patient.zhou")
    assert error_code(await patient.error(query)) == "FORBIDDEN"
    bad_token = GraphQLClient(gql.http, "not-a-token")
    assert "expired or invalid" in (await bad_token.error("{ me { username } }"))["message"]
    assert (await gql.error("{ me { username } }"))["message"] == "请先登录 / please sign in"
