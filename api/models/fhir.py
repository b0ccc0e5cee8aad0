"""FHIR Bulk Data exports: the job a client polls and the NDJSON files it downloads."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from api.models.base import ts_field


class FhirBulkExport(SQLModel, table=True):
    """One `$export` kick-off: who asked, what, and when it was complete."""

    __tablename__ = "fhir_bulk_export"

    id: str = Field(primary_key=True, max_length=36)  # uuid4, the status URL's last part
    user_id: int = Field(foreign_key="user.id", index=True)
    request_url: str = Field(max_length=2000)
    status: str = Field(default="complete", max_length=20)  # in-progress | complete | error
    transaction_time: datetime = ts_field(default_now=True)
    created_at: datetime = ts_field(default_now=True)
    expires_at: datetime = ts_field(default_now=True)


class FhirBulkFile(SQLModel, table=True):
    """One NDJSON output file of a job: the resources of one type, a line each."""

    __tablename__ = "fhir_bulk_file"
    __table_args__ = (sa.UniqueConstraint("export_id", "resource_type", name="uq_fhir_bulk_file"),)

    id: int | None = Field(default=None, primary_key=True)
    export_id: str = Field(foreign_key="fhir_bulk_export.id", index=True, max_length=36)
    resource_type: str = Field(max_length=60)
    count: int
    body: str  # NDJSON
