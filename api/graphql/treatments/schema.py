"""Treatment management over GraphQL, merged from one module per concern."""

from __future__ import annotations

from strawberry.tools import merge_types

from api.graphql.treatments import bedside, booking, orders, reports

Query = merge_types("TreatmentsQuery", (orders.Query, booking.Query, bedside.Query, reports.Query))
Mutation = merge_types("TreatmentsMutation", (orders.Mutation, booking.Mutation, bedside.Mutation, reports.Mutation))
