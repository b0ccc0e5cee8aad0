"""The signed-in user's own account: change password, sign out this device."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry

from api.auth import token_claims
from api.domain import people, security
from api.graphql.context import Info
from api.graphql.people.types import LoginResult, UserRef
from api.graphql.permissions import IsAuthenticated


@strawberry.type
class Mutation:
    @strawberry.mutation(
        permission_classes=[IsAuthenticated],
        description="Change the password (policy: length, 3 character classes, not the username); "
        "signs out every other device and returns a new token.",
    )
    async def change_password(
        self, info: Info, current_password: str, new_password: str
    ) -> LoginResult:
        actor = info.context.require_actor()
        services = info.context.services
        async with info.context.transaction() as session:
            user = await people.get_user(session, actor.user_id)
            outcome = await security.change_password(
                session,
                services.settings,
                services.hashing,
                user,
                current_password=current_password,
                new_password=new_password,
                actor=actor,
                address=info.context.actor_address(),
            )
            ref = UserRef.from_row(user)
        # Raised after the commit, so the failure counter sticks.
        if outcome.error is not None or outcome.token is None:
            raise outcome.error or security.DomainError(
                security.ErrorCode.VALIDATION, "密码未修改 / password not changed"
            )
        return LoginResult(token=outcome.token, user=ref)

    @strawberry.mutation(
        permission_classes=[IsAuthenticated], description="Sign out this token only."
    )
    async def logout(self, info: Info) -> bool:
        actor = info.context.require_actor()
        claims = token_claims(info.context.settings, info.context.bearer_token() or "")
        async with info.context.transaction() as session:
            await security.revoke_token(
                session,
                jti=str(claims["jti"]),
                user_id=actor.user_id,
                expires_at=datetime.fromtimestamp(int(claims["exp"]), UTC),  # type: ignore[arg-type]
            )
        return True
