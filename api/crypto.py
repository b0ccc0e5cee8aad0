"""Encryption of patient identifiers at rest, keyed hashes for lookup, and masking.

Fernet (AES-128-CBC + HMAC) from `cryptography`; MultiFernet reads values written under
an older key after a rotation (BEDSIDE_PREVIOUS_SECRET_KEYS) and `rotate` re-encrypts them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, MultiFernet

from api.settings import Settings


def _fernet_for(secret: str) -> Fernet:
    digest = hashlib.sha256(("bedside-fernet:" + secret).encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


class FieldCipher:
    def __init__(self, settings: Settings) -> None:
        keys = [settings.effective_secret_key, *settings.previous_secret_keys]
        self._fernet = MultiFernet([_fernet_for(k) for k in keys])
        # Lookup hashes are keyed too; hashes under the previous keys are still matched
        # (lookup_hashes) until `bedside rotate-keys` has re-hashed every row.
        self._hash_keys = [hashlib.sha256(("bedside-lookup:" + k).encode()).digest() for k in keys]
        self._hash_key = self._hash_keys[0]

    def encrypt(self, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str | None) -> str | None:
        if token is None:
            return None
        return self._fernet.decrypt(token.encode()).decode()

    def rotate(self, token: str | None) -> str | None:
        return None if token is None else self._fernet.rotate(token.encode()).decode()

    def lookup_hash(self, value: str | None) -> str | None:
        if not value:
            return None
        normalized = value.strip().upper()
        return hmac.new(self._hash_key, normalized.encode(), hashlib.sha256).hexdigest()

    def lookup_hashes(self, value: str | None) -> list[str]:
        """The value's lookup hash under the current key and every previous one."""
        if not value:
            return []
        normalized = value.strip().upper().encode()
        return [hmac.new(key, normalized, hashlib.sha256).hexdigest() for key in self._hash_keys]


def mask_name(name: str) -> str:
    """张三丰 -> 张*丰, 李四 -> 李*; Latin names keep the first letter."""
    if len(name) <= 1:
        return "*"
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def mask_middle(value: str | None, keep_start: int = 3, keep_end: int = 4) -> str | None:
    if not value:
        return value
    if len(value) <= keep_start + keep_end:
        return "*" * len(value)
    return value[:keep_start] + "*" * (len(value) - keep_start - keep_end) + value[-keep_end:]
