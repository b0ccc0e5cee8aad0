"""login and me."""

from __future__ import annotations

import strawberry

from api.domain import people
from api.graphql.context import Info
from api.graphql.people.types import Department, LoginResult, Me, StaffMember, UserRef
from api.graphql.permissions import IsAuthenticated, IsStaff, Public
from api.models.people import Department as DepartmentRow


@strawberry.type
class Query:
    @strawberry.field(permission_classes=[IsAuthenticated], description="The signed-in user.")
    async def me(self, info: Info) -> Me:
        actor = info.context.require_actor()
        async with info.context.read() as session:
            user = await people.get_user(session, actor.user_id)
            dept = (
                await session.get(DepartmentRow, user.department_id) if user.department_id else None
            )
        return Me(
            id=strawberry.ID(str(user.id)),
            username=user.username,
            display_name=user.display_name,
            roles=list(user.roles or []),
            department=Department.from_row(dept) if dept else None,
            must_change_password=user.password_must_change,
        )

    @strawberry.field(
        permission_classes=[IsStaff],
        description="Staff whose name or username matches, for choosing a person (转交, 加签).",
    )
    async def staff(self, info: Info, search: str | None = None) -> list[StaffMember]:
        info.context.require_actor()
        async with info.context.read() as session:
            users = await people.search_staff(session, search)
            ids = {u.department_id for u in users if u.department_id}
            departments = {
                d.id: d
                for d in ([await session.get(DepartmentRow, i) for i in ids] if ids else [])
                if d is not None
            }
        return [StaffMember.from_row(u, departments.get(u.department_id or 0)) for u in users]


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[Public], description="Password login; returns a bearer token."
    )
    async def login(self, info: Info, username: str, password: str) -> LoginResult:
        services = info.context.services
        async with info.context.transaction() as session:
            address = info.context.actor_address()
            outcome = await people.login(
                session,
                services.settings,
                services.hashing,
                username=username,
                password=password,
                address=address,
            )
        # Raised after the commit, so the failed-login counter sticks.
        if outcome.error is not None or outcome.token is None or outcome.user is None:
            raise outcome.error or people.DomainError(
                people.ErrorCode.UNAUTHENTICATED, people.BAD_LOGIN
            )
        return LoginResult(token=outcome.token, user=UserRef.from_row(outcome.user))

    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Revoke every token of the signed-in user.",
    )
    async def logout_everywhere(self, info: Info) -> bool:
        actor = info.context.require_actor()
        async with info.context.transaction() as session:
            user = await people.get_user(session, actor.user_id)
            await people.revoke_tokens(session, user, actor=actor)
        return True
