"""What one process shares between requests: settings, database, hashing, cipher."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from api.auth import PasswordHashing
from api.crypto import FieldCipher
from api.db import Database
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
        # The domain's hooks, guards and audit stream sources are installed by each
        # process's assembly (`api.assembly.install_domain`), not here.
        return cls(
            settings=settings,
            db=db or Database(settings),
            hashing=PasswordHashing(settings),
            cipher=FieldCipher(settings),
        )
