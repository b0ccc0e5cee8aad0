"""The `bedside` command: one module per area, all registered on `main`."""

from __future__ import annotations

from api.cli import (  # noqa: F401 - each module registers its commands on `main`
    audit,
    bots,
    dingtalk,
    directory,
    hl7,
    imports,
    keys,
    server,
    treatments,
    users,
    worker,
)
from api.cli.context import EXIT_NO_SCHEMA, EXIT_SERVICE_UNREACHABLE, main

__all__ = ["EXIT_NO_SCHEMA", "EXIT_SERVICE_UNREACHABLE", "main"]
