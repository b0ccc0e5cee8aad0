"""Every HL7 handler, loaded: importing each handler module registers what it handles.

Kept apart from the registry (`integrations.hl7.handlers`) so the handler modules import
the registry and nothing imports them back.
"""

from __future__ import annotations

from integrations.hl7.handlers import HANDLERS, Handler


def load_handlers() -> dict[tuple[str, str], Handler]:
    # Imported for their registrations.
    from integrations.hl7.handlers import adt, dft, orders, results, siu  # noqa: F401

    return HANDLERS
