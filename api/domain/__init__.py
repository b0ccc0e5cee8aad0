"""Business rules: plain async services, the only place where rules live."""

import pkgutil
from importlib import import_module


def import_all_domain_modules() -> None:
    """Import every domain module, so the hooks, guards and audit stream sources they
    register at import time exist in this process (the CLI's `audit verify` needs them)."""
    for info in pkgutil.walk_packages(__path__, prefix=__name__ + "."):
        import_module(info.name)
