"""Encryption at rest for exchange credentials, on ``cryptography``'s ``MultiFernet``.

Keys come from ``settings.FIELD_ENCRYPTION_KEYS`` (separate from ``SECRET_KEY``): the first key encrypts, every key
decrypts, so keys can be rotated (add the new key first, run ``manage.py rotate_credentials``, drop the old key).
A missing, malformed or wrong key raises: ciphertext is never returned as if it were the secret.

``decrypt`` is a primitive for ``accounts.services.credentials_for_signing`` only; nothing else may call it.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class CredentialDecryptionError(Exception):
    """Stored credentials cannot be decrypted with the configured keys (wrong key, or corrupted data)."""


def _keys() -> tuple[str, ...]:
    keys = tuple(getattr(settings, "FIELD_ENCRYPTION_KEYS", ()) or ())
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: no key to encrypt or decrypt credentials with.")
    return keys


@lru_cache(maxsize=8)
def _multifernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(k.encode("ascii")) for k in keys])
    except (ValueError, UnicodeEncodeError) as exc:
        # Do not echo the key material in the message.
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS holds a malformed key: each must be 32 url-safe base64-encoded bytes "
            "(generate one with `python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())'`)."
        ) from exc


def current_fingerprint() -> str:
    """A short, non-secret id of the encrypting (first) key, stored beside the ciphertext."""
    return hashlib.sha256(_keys()[0].encode("ascii", "replace")).hexdigest()[:16]


def encrypt(plaintext: str) -> str:
    """Encrypt ``plaintext`` under the first key; returns the Fernet token as text."""
    return _multifernet(_keys()).encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    """Decrypt a token with any configured key. Raises ``CredentialDecryptionError`` on a wrong key or bad data."""
    try:
        return _multifernet(_keys()).decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError) as exc:
        raise CredentialDecryptionError(
            "Stored exchange credentials cannot be decrypted with the configured FIELD_ENCRYPTION_KEYS "
            "(wrong or missing key?)."
        ) from exc


def rotate(token: str) -> str:
    """Re-encrypt a token under the first key (decryptable by any configured key, else raises)."""
    try:
        return _multifernet(_keys()).rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError) as exc:
        raise CredentialDecryptionError("A stored credential is not decryptable with any configured key.") from exc
