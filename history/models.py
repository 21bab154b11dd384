"""Closed trades as the exchange lists them (with who closed each), and the account balance over time."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import ExchangeAccount
from automations.models import Automation


class ClosedTrade(models.Model):
    """One closed or canceled isolated trade, copied from the exchange's closed/canceled lists (the source of
    truth, so trades closed outside Axisor are here too). ``closed_by`` says who ended it."""

    class ClosedBy(models.TextChoices):
        AUTOMATION = "automation", _("Automation")
        TAKEPROFIT = "takeprofit", _("Take-profit")
        STOPLOSS = "stoploss", _("Stop-loss")
        LIQUIDATION = "liquidation", _("Liquidation")
        MANUAL = "manual", _("By hand in Axisor")
        OUTSIDE = "outside", _("Outside Axisor")
        CANCELED = "canceled", _("Canceled (never filled)")

    account = models.ForeignKey(ExchangeAccount, on_delete=models.CASCADE, related_name="closed_trades")
    trade_id = models.CharField(max_length=64)
    client_id = models.CharField(max_length=64, blank=True)
    canceled = models.BooleanField(default=False)
    side = models.CharField(max_length=4)
    quantity = models.PositiveIntegerField()
    leverage = models.DecimalField(max_digits=12, decimal_places=6)
    margin = models.BigIntegerField(help_text="Margin at entry (sats).")
    entry_price = models.DecimalField(max_digits=14, decimal_places=1, null=True, blank=True)
    exit_price = models.DecimalField(max_digits=14, decimal_places=1, null=True, blank=True)
    stoploss = models.DecimalField(max_digits=14, decimal_places=1, default=0)
    takeprofit = models.DecimalField(max_digits=14, decimal_places=1, default=0)
    pl = models.BigIntegerField(default=0, help_text="Realised PnL before fees (sats).")
    opening_fee = models.BigIntegerField(default=0)
    closing_fee = models.BigIntegerField(default=0)
    funding_fees = models.BigIntegerField(default=0, help_text="Funding paid (+) or received (−), sats.")
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField()
    closed_by = models.CharField(max_length=12, choices=ClosedBy.choices)
    automation = models.ForeignKey(
        Automation, on_delete=models.SET_NULL, null=True, blank=True, related_name="closed_trades"
    )
    automation_name = models.CharField(max_length=100, blank=True)
    synced_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-closed_at", "-id"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["account", "trade_id"], name="unique_closed_trade")
        ]
        indexes: ClassVar[list[models.Index]] = [models.Index(fields=["account", "-closed_at"])]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity} USD ({self.trade_id})"

    @property
    def fees(self) -> int:
        return self.opening_fee + self.closing_fee + self.funding_fees

    @property
    def net_pl(self) -> int:
        """Realised PnL after opening, closing and funding fees (sats)."""
        return self.pl - self.fees

    @property
    def pl_percent(self) -> Decimal | None:
        """Net PnL as a percentage of the entry margin (None for a canceled order)."""
        if self.canceled or self.margin <= 0:
            return None
        return (Decimal(self.net_pl) * 100 / Decimal(self.margin)).quantize(Decimal("0.01"))


class BalancePoint(models.Model):
    """The account's balance at one history sync: free balance and margin locked in running trades (sats)."""

    account = models.ForeignKey(ExchangeAccount, on_delete=models.CASCADE, related_name="balance_points")
    at = models.DateTimeField()
    free = models.BigIntegerField()
    in_margin = models.BigIntegerField(default=0)

    class Meta:
        ordering: ClassVar[list[str]] = ["at", "id"]
        indexes: ClassVar[list[models.Index]] = [models.Index(fields=["account", "at"])]

    def __str__(self) -> str:
        return f"{self.account_id} {self.at:%Y-%m-%d %H:%M} {self.total}"

    @property
    def total(self) -> int:
        return self.free + self.in_margin
