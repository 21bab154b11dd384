"""Write operations on users' exchange accounts, and the one place where credentials are decrypted.

Contract shared by every function here: callers pass already-validated input (forms do that); writes run in a
transaction; secrets are encrypted before they reach the ORM and never logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts import crypto
from accounts.models import ExchangeAccount, User
from lnmarkets.credentials import Credentials

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verification:
    """What the exchange said about a key when it was saved."""

    permissions: tuple[str, ...]
    error: str = ""


def _set_secrets(account: ExchangeAccount, *, api_key: str, api_secret: str, passphrase: str) -> None:
    account.api_key_encrypted = crypto.encrypt(api_key)
    account.api_secret_encrypted = crypto.encrypt(api_secret)
    account.passphrase_encrypted = crypto.encrypt(passphrase)
    account.key_hint = api_key[-4:]
    account.key_fingerprint = crypto.current_fingerprint()


def _apply_verification(account: ExchangeAccount, verification: Verification | None) -> None:
    if verification is None:
        return
    account.permissions = list(verification.permissions)
    account.verification_error = verification.error[:300]
    account.last_verified_at = timezone.now()


@transaction.atomic
def exchange_account_create(
    *,
    owner: User,
    label: str,
    network: str,
    api_key: str,
    api_secret: str,
    passphrase: str,
    verification: Verification | None = None,
) -> ExchangeAccount:
    """Store a new exchange account for ``owner``; the user's first account becomes the active one."""
    account = ExchangeAccount(owner=owner, label=label, network=network)
    _set_secrets(account, api_key=api_key, api_secret=api_secret, passphrase=passphrase)
    _apply_verification(account, verification)
    account.is_active = not ExchangeAccount.objects.select_for_update().filter(owner=owner, is_active=True).exists()
    account.save()
    logger.info("exchange account %s created for user %s (network %s)", account.pk, owner.pk, network)
    return account


@transaction.atomic
def exchange_account_update(
    *,
    account: ExchangeAccount,
    label: str,
    network: str,
    api_key: str = "",
    api_secret: str = "",
    passphrase: str = "",
    verification: Verification | None = None,
) -> ExchangeAccount:
    """Change label/network, and the credentials when all three new values are given (blank keeps the old ones)."""
    account.label = label
    account.network = network
    fields = ["label", "network", "updated_at"]
    if api_key and api_secret and passphrase:
        _set_secrets(account, api_key=api_key, api_secret=api_secret, passphrase=passphrase)
        fields += ["api_key_encrypted", "api_secret_encrypted", "passphrase_encrypted", "key_hint", "key_fingerprint"]
        # New keys: end any credential backoff, so the next reconciliation tries them at once.
        account.auth_retry_at = None
        fields += ["auth_retry_at"]
    if verification is not None:
        _apply_verification(account, verification)
        fields += ["permissions", "verification_error", "last_verified_at"]
    account.save(update_fields=fields)
    logger.info("exchange account %s updated", account.pk)
    return account


@transaction.atomic
def exchange_account_activate(*, account: ExchangeAccount) -> ExchangeAccount:
    """Make ``account`` the one shown on its owner's dashboard (exactly one active account per user)."""
    ExchangeAccount.objects.select_for_update().filter(owner_id=account.owner_id, is_active=True).exclude(
        pk=account.pk
    ).update(is_active=False)
    if not account.is_active:
        account.is_active = True
        account.save(update_fields=["is_active", "updated_at"])
    return account


@transaction.atomic
def exchange_account_delete(*, account: ExchangeAccount) -> None:
    """Delete ``account``; if it was the active one, the owner's next account (by label) becomes active."""
    owner_id, was_active = account.owner_id, account.is_active
    account.delete()
    if was_active:
        successor = ExchangeAccount.objects.filter(owner_id=owner_id).order_by("label", "id").first()
        if successor is not None:
            successor.is_active = True
            successor.save(update_fields=["is_active", "updated_at"])
    logger.info("exchange account deleted for user %s", owner_id)


def credentials_for_signing(*, account_id: int, row: ExchangeAccount | None = None) -> Credentials:
    """Decrypt one account's credentials, for signing an exchange request right now.

    The only caller is the exchange gateway's credentials provider; the plaintext must not be stored, logged, put
    in a task argument or sent to a browser. ``row``: the account's row as the caller read it moments ago (an order
    delivery reads it with its intent, ``automations.exchange.signing_from``), decrypted instead of read again.
    Raises ``crypto.CredentialDecryptionError`` on a wrong key and ``ExchangeAccount.DoesNotExist`` for an unknown
    id.
    """
    if row is None or row.pk != account_id:
        row = ExchangeAccount.objects.only("api_key_encrypted", "api_secret_encrypted", "passphrase_encrypted").get(
            pk=account_id
        )
    return Credentials(
        key=crypto.decrypt(row.api_key_encrypted),
        secret=crypto.decrypt(row.api_secret_encrypted),
        passphrase=crypto.decrypt(row.passphrase_encrypted),
    )


def credentials_rotate_all(*, batch_size: int = 200) -> int:
    """Re-encrypt every stored credential under the first configured key; returns the number of rows rotated.

    Each row is rotated in its own short transaction with a row lock, so a concurrent save is never overwritten.
    Raises ``crypto.CredentialDecryptionError`` (and stops) on a row that no configured key can decrypt.
    """
    fingerprint = crypto.current_fingerprint()
    ids = ExchangeAccount.objects.order_by("pk").values_list("pk", flat=True)
    rotated = 0
    for pk in ids.iterator(chunk_size=batch_size):
        with transaction.atomic():
            row = ExchangeAccount.objects.select_for_update().get(pk=pk)
            row.api_key_encrypted = crypto.rotate(row.api_key_encrypted)
            row.api_secret_encrypted = crypto.rotate(row.api_secret_encrypted)
            row.passphrase_encrypted = crypto.rotate(row.passphrase_encrypted)
            row.key_fingerprint = fingerprint
            row.save(
                update_fields=["api_key_encrypted", "api_secret_encrypted", "passphrase_encrypted", "key_fingerprint"]
            )
        rotated += 1
    return rotated
