"""Encryption at rest for notification secrets (webhook signing secrets, the bot token): the same MultiFernet keys
as exchange credentials (``settings.FIELD_ENCRYPTION_KEYS``, rotation included). Plaintext lives only in the
sending function's locals: never in task arguments, log lines or messages."""

from __future__ import annotations

from accounts import crypto


def secret_encrypt(plaintext: str) -> str:
    return crypto.encrypt(plaintext)


def secret_decrypt(token: str) -> str:
    """Raises ``accounts.crypto.CredentialDecryptionError`` when no configured key decrypts ``token``."""
    return crypto.decrypt(token)
