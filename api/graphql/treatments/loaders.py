"""Per-request DataLoaders for the rows treatment types point at."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from strawberry.dataloader import DataLoader

from api.graphql.context import Context
from api.models.patients import Patient
from api.models.treatments import TreatmentItem, TreatmentOrder


def _by_id(model: Any):  # type: ignore[no-untyped-def]
    def factory(ctx: Context) -> DataLoader[int, Any]:
        async def load(ids: Sequence[int]) -> list[Any]:
            async with ctx.read() as session:
                rows = {
                    r.id: r
                    for r in (
                        await session.execute(sa.select(model).where(model.id.in_(ids)))
                    ).scalars()
                }
            return [rows.get(i) for i in ids]

        return DataLoader(load_fn=load)

    return factory


item_loader = _by_id(TreatmentItem)
patient_loader = _by_id(Patient)
order_loader = _by_id(TreatmentOrder)


async def load_item(ctx: Context, item_id: int) -> TreatmentItem:
    return await ctx.loader("treatment_item", item_loader).load(item_id)  # type: ignore[no-any-return]


async def load_patient_row(ctx: Context, patient_id: int) -> Patient:
    return await ctx.loader("treatment_patient", patient_loader).load(patient_id)  # type: ignore[no-any-return]


async def load_order(ctx: Context, order_id: int) -> TreatmentOrder | None:
    return await ctx.loader("treatment_order", order_loader).load(order_id)  # type: ignore[no-any-return]


def prime_related(ctx: Context, entries: Sequence[tuple[Any, Patient, TreatmentItem]]) -> None:
    """Prime the loaders with rows a list query already joined, so resolving `patient` and
    `item` on each entry costs no further query."""
    patients = ctx.loader("treatment_patient", patient_loader)
    items = ctx.loader("treatment_item", item_loader)
    for _, patient, item in entries:
        patients.prime(patient.id, patient)
        items.prime(item.id, item)
