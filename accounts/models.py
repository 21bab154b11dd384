"""Users and their LN Markets exchange accounts. Credentials are stored as Fernet ciphertext only."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class DisplayCurrency(models.TextChoices):
    SATS = "sats", "sats"
    BTC = "btc", "BTC"
    USD = "usd", "USD"


class User(AbstractUser):
    """A person using Axisor. Owns any number of exchange accounts.

    Preferences (the settings page): ``language`` (blank = the browser's), ``time_zone`` (an IANA name; blank =
    UTC) and the currency amounts in sats are shown in.
    """

    language = models.CharField(_("language"), max_length=16, blank=True, default="")
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True, default="")
    display_currency = models.CharField(
        _("display currency"), max_length=8, choices=DisplayCurrency.choices, default=DisplayCurrency.SATS
    )


class Network(models.TextChoices):
    MAINNET = "mainnet", _("Mainnet")
    SIGNET = "signet", _("Signet (test network)")
    SIMULATOR = "simulator", _("Simulator (paper trading)")


class ExchangeAccount(models.Model):
    """One LN Markets API key of a user. The secret parts are ciphertext; see ``accounts.crypto``.

    ``key_hint`` holds the last 4 characters of the API key so that pages and the admin can name the key without
    decrypting anything (decryption happens only to sign requests).
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exchange_accounts", verbose_name=_("owner")
    )
    label = models.CharField(_("label"), max_length=100)
    network = models.CharField(_("network"), max_length=16, choices=Network.choices, default=Network.SIMULATOR)
    api_key_encrypted = models.TextField()
    api_secret_encrypted = models.TextField()
    passphrase_encrypted = models.TextField()
    key_hint = models.CharField(max_length=4, blank=True)
    key_fingerprint = models.CharField(
        max_length=16, blank=True, help_text="Which encryption key the ciphertext is under (rotation status)."
    )
    is_active = models.BooleanField(_("active"), default=False, help_text=_("The account shown on the dashboard."))
    is_enabled = models.BooleanField(_("enabled"), default=True, help_text=_("Automations run for enabled accounts."))
    kill_switch = models.BooleanField(
        _("kill switch"), default=False, help_text=_("No new entries for this account (closes still run).")
    )
    entries_halted = models.BooleanField(
        default=False, help_text="Set by the failure breaker or a pending reconciliation; cleared by reconciling."
    )
    halt_reason = models.CharField(max_length=300, blank=True)
    consecutive_failures = models.PositiveSmallIntegerField(default=0)
    manage_external_trades = models.BooleanField(
        default=False, help_text="Let automations manage trades opened outside Axisor on this account."
    )
    balance = models.BigIntegerField(null=True, blank=True, help_text="Free balance (sats) at the last refresh.")
    balance_updated_at = models.DateTimeField(null=True, blank=True)
    reconciled_at = models.DateTimeField(null=True, blank=True)
    last_verified_at = models.DateTimeField(_("last verified"), null=True, blank=True)
    permissions = models.JSONField(default=list, blank=True)
    verification_error = models.CharField(max_length=300, blank=True)
    # Credentials the exchange rejected (or that no key decrypts): reconciliation backs off (issue #12).
    auth_failures = models.PositiveIntegerField(default=0)
    auth_failed_at = models.DateTimeField(null=True, blank=True)
    auth_retry_at = models.DateTimeField(
        null=True, blank=True, help_text="No reconciliation before this time after rejected credentials."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("exchange account")
        verbose_name_plural = _("exchange accounts")
        ordering: ClassVar[list[str]] = ["label", "id"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["owner"], condition=Q(is_active=True), name="one_active_account_per_user"),
            models.UniqueConstraint(fields=["owner", "label"], name="unique_account_label_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.network})"

    @property
    def is_paper(self) -> bool:
        """Simulated money: labelled PAPER everywhere."""
        return self.network == Network.SIMULATOR

    @property
    def masked_key(self) -> str:
        return f"••••{self.key_hint}" if self.key_hint else "••••"

    @property
    def can_trade(self) -> bool:
        return "futures:isolated:write" in (self.permissions or [])

    @property
    def can_withdraw(self) -> bool:
        return any(str(p).startswith("account:withdrawals:write") for p in (self.permissions or []))
