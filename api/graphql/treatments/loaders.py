"""Per-request DataLoaders for the rows treatment types point at."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from strawberry.dataloader import DataLoader

from api.auth import Actor
from api.domain.treatments.access import visible_patient_ids, visible_patient_rows_clause
from api.errors import not_found
from api.graphql.context import Context
from api.models.patients import Patient
from api.models.treatments import TreatmentItem, TreatmentOrder


def _by_id(model: Any, visible: Any = None):  # type: ignore[no-untyped-def]
    """A loader by id; `visible(actor)` is the domain's WHERE clause of rows the actor may
    see (a row outside it loads as None, as if it were not there)."""

    def factory(ctx: Context) -> DataLoader[int, Any]:
        async def load(ids: Sequence[int]) -> list[Any]:
            stmt = sa.select(model).where(model.id.in_(ids))
            if visible is not None:
                stmt = stmt.where(visible(ctx.require_actor()))
            async with ctx.read() as session:
                rows = {r.id: r for r in (await session.execute(stmt)).scalars()}
            return [rows.get(i) for i in ids]

        return DataLoader(load_fn=load)

    return factory


def _visible_orders(actor: Actor) -> sa.ColumnElement[bool]:
    return TreatmentOrder.patient_id.in_(visible_patient_ids(actor))


item_loader = _by_id(TreatmentItem)
patient_loader = _by_id(Patient, visible_patient_rows_clause)
order_loader = _by_id(TreatmentOrder, _visible_orders)


async def load_item(ctx: Context, item_id: int) -> TreatmentItem:
    return await ctx.loader("treatment_item", item_loader).load(item_id)  # type: ignore[no-any-return]


async def load_patient_row(ctx: Context, patient_id: int) -> Patient:
    """The patient, if the actor may see them; NOT_FOUND otherwise."""
    row = await ctx.loader("treatment_patient", patient_loader).load(patient_id)
    if row is None:
        raise not_found("患者", "patient")
    return row  # type: ignore[no-any-return]


async def load_order(ctx: Context, order_id: int) -> TreatmentOrder | None:
    return await ctx.loader("treatment_order", order_loader).load(order_id)  # type: ignore[no-any-return]


def prime_related(ctx: Context, entries: Sequence[tuple[Any, Patient, TreatmentItem]]) -> None:
    """Prime the loaders with rows a list query already joined, so resolving `patient` and
    `item` on each entry costs no further query."""
    patients = ctx.loader("treatment_patient", patient_loader)
    items = ctx.loader("treatment_item", item_loader)
    for _, patient, item in entries:  # rows the domain's list already scoped to the actor
        patients.prime(patient.id, patient)
        items.prime(item.id, item)
