"""DataLoaders for the approval types, built once per request."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from strawberry.dataloader import DataLoader

from api.domain import approvals
from api.domain.approvals import Definition
from api.graphql.context import Context
from api.models.approvals import ApprovalDefinition, ApprovalInstance, ApprovalTask


def instance_loader(ctx: Context) -> DataLoader[int, ApprovalInstance | None]:
    async def load(ids: Sequence[int]) -> list[ApprovalInstance | None]:
        async with ctx.read() as session:
            rows = {
                i.id: i
                for i in (
                    await session.execute(
                        sa.select(ApprovalInstance).where(ApprovalInstance.id.in_(ids))
                    )
                ).scalars()
            }
        return [rows.get(i) for i in ids]

    return DataLoader(load_fn=load)


def tasks_by_instance_loader(ctx: Context) -> DataLoader[int, list[ApprovalTask]]:
    async def load(ids: Sequence[int]) -> list[list[ApprovalTask]]:
        grouped: dict[int, list[ApprovalTask]] = defaultdict(list)
        async with ctx.read() as session:
            stmt = (
                sa.select(ApprovalTask)
                .where(ApprovalTask.instance_id.in_(ids))
                .order_by(ApprovalTask.id)
            )
            for task in (await session.execute(stmt)).scalars():
                grouped[task.instance_id].append(task)
        return [grouped.get(i, []) for i in ids]

    return DataLoader(load_fn=load)


def definition_loader(ctx: Context) -> DataLoader[int, Definition | None]:
    async def load(ids: Sequence[int]) -> list[Definition | None]:
        async with ctx.read() as session:
            rows = {
                d.id: d
                for d in (
                    await session.execute(
                        sa.select(ApprovalDefinition).where(ApprovalDefinition.id.in_(ids))
                    )
                ).scalars()
            }
        return [approvals.parse_stored(rows[i]) if i in rows else None for i in ids]

    return DataLoader(load_fn=load)


def data_read_logger(ctx: Context) -> DataLoader[int, bool]:
    """Writes one access-log row per request for the instances whose `data` was returned
    (only those that concern a patient are logged)."""

    async def load(ids: Sequence[int]) -> list[bool]:
        actor = ctx.require_actor()
        async with ctx.services.db.transaction() as session:
            rows = list(
                (
                    await session.execute(
                        sa.select(ApprovalInstance).where(ApprovalInstance.id.in_(ids))
                    )
                ).scalars()
            )
            await approvals.record_instance_reads(session, actor, rows)
        return [True for _ in ids]

    return DataLoader(load_fn=load)
