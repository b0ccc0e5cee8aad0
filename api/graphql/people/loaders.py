from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from strawberry.dataloader import DataLoader

from api.graphql.context import Context
from api.models.people import User


def user_loader(ctx: Context) -> DataLoader[int, User | None]:
    async def load(ids: Sequence[int]) -> list[User | None]:
        async with ctx.read() as session:
            rows = {
                u.id: u
                for u in (await session.execute(sa.select(User).where(User.id.in_(ids)))).scalars()
            }
        return [rows.get(i) for i in ids]

    return DataLoader(load_fn=load)


async def load_user(ctx: Context, user_id: int | None) -> User | None:
    if user_id is None:
        return None
    return await ctx.loader("user", user_loader).load(user_id)
