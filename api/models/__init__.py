"""Every table, imported so SQLModel.metadata is complete for Alembic and tests."""

from api.models import audit, base, notices, patients, people  # noqa: F401
