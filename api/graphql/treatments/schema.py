"""Treatment management over GraphQL, merged from one module per concern."""

from __future__ import annotations

from strawberry.tools import merge_types

from api.graphql.treatments import admin, bedside, booking, orders, reports

_AREAS = (orders, booking, bedside, reports, admin)
Query = merge_types("TreatmentsQuery", tuple(a.Query for a in _AREAS if hasattr(a, "Query")))
Mutation = merge_types("TreatmentsMutation", tuple(a.Mutation for a in _AREAS))
