"""What every process installs before it serves: the hooks, guards and hash-chain sources
the domain's areas give the approval engine and the audit verifier.

Called, explicitly, by each assembly: the app (`api/app.py`), the command line
(`api/cli/context.py`) and the notification worker; `Services.build` does not do it."""

from __future__ import annotations

from importlib import import_module

# Areas that register by being imported (their modules do it at import time).
_REGISTERED_AT_IMPORT = (
    "api.domain.approvals.history",  # the approval hash chains that must exist
    "api.domain.treatments.orders",  # the treatment order chains
    "api.domain.penalties.history",  # the penalty chains
)


def install_domain() -> None:
    """Register every area's guards, completion and closing hooks and expected hash
    chains (running it again changes nothing)."""
    from api.domain import penalties, privileges
    from api.domain.surgery import hooks as surgery_hooks

    for name in _REGISTERED_AT_IMPORT:
        import_module(name)
    surgery_hooks.register_hooks()
    privileges.register_hooks()
    penalties.register_appeal_hooks()
