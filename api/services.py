"""What one process shares between requests: settings, database, hashing, cipher."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from api.auth import PasswordHashing
from api.crypto import FieldCipher
from api.db import Database
from api.domain import import_all_domain_modules
from api.settings import Settings


@dataclass
class Services:
    settings: Settings
    db: Database
    hashing: PasswordHashing
    cipher: FieldCipher
    # Optional pieces that later areas attach (job queue, platform clients, storage …).
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, db: Database | None = None) -> Services:
        # Domain modules register hooks, guards and audit stream sources when imported;
        # every process (API, worker, HL7 listener, CLI) must have all of them.
        import_all_domain_modules()
        return cls(
            settings=settings,
            db=db or Database(settings),
            hashing=PasswordHashing(settings),
            cipher=FieldCipher(settings),
        )
