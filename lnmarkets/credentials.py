"""API credentials as a value object, and the provider contract the clients call at signing time.

The accounts app owns decryption. It hands the gateway a ``CredentialsProvider``: a zero-argument callable that
decrypts and returns ``Credentials``. The clients call it once per request (or per Stream ``authenticate``), sign,
and drop the value, so the plaintext lives only for the duration of the call. Clients never store it, and never log
it; ``repr``/``str`` are masked so a stray log line or traceback cannot leak it (docs/reliability.md T23).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Credentials:
    """An LN Markets v3 API key with its secret and passphrase (docs/protocol.md §3.1)."""

    key: str = field(repr=False)
    secret: str = field(repr=False)
    passphrase: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Credentials(key={mask(self.key)}, secret=***, passphrase=***)"

    __str__ = __repr__

    @property
    def key_id(self) -> str:
        """A stable non-secret id of the key: ``sha256(key)[:16]`` (used in rate-limit bucket names)."""
        return key_fingerprint(self.key)


CredentialsProvider = Callable[[], Credentials]


def mask(value: str) -> str:
    """``abcd…`` with only the first 4 characters visible (never the whole key; nothing for short values)."""
    return f"{value[:4]}…" if len(value) > 8 else "***"


def key_fingerprint(key: str) -> str:
    """``sha256(key)`` hex, first 16 chars: safe to put in Redis key names and logs."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def static_provider(credentials: Credentials) -> CredentialsProvider:
    """A provider that returns fixed credentials (tests, verification of a freshly typed key)."""

    def provide() -> Credentials:
        return credentials

    return provide
