"""Acting by hand on a running trade from the cockpit: close it, set its stop-loss or take-profit, add margin, or
close every running trade of an account. Each is checked against the exchange's rules first, then asked for as an
order intent (``automations.services.intents.request``, origin "cockpit"): written with its audit entry, sent once.

A confirmation form carries its own ``clientId``: submitting it twice asks once (the second finds the intent)."""

from __future__ import annotations

import re
from decimal import Decimal

from django.db import IntegrityError
from django.utils.translation import gettext as _

from accounts.models import ExchangeAccount, User
from automations.models import OrderIntent, TrackedTrade, new_client_id
from automations.services.intents import request
from lnmarkets.maths import is_on_tick, leverage_of

CLIENT_ID = re.compile(r"ax-[0-9a-f]{32}")
ACTIONS = ("close", "stoploss", "takeprofit", "add-margin")
ORIGIN = "cockpit"


def running_trade_for(user: User, pk: int) -> TrackedTrade | None:
    """The user's running trade with this id (``None`` for anyone else's, or one no longer running)."""
    return (
        TrackedTrade.objects.select_related("account")
        .filter(pk=pk, account__owner=user, state=TrackedTrade.State.RUNNING)
        .first()
    )


def fresh_client_id() -> str:
    return new_client_id()


def stoploss_error(trade: TrackedTrade, price: Decimal, last: Decimal | None) -> str | None:
    """Why the exchange would refuse this stop-loss, in words (``None``: it accepts it). Long: from the liquidation
    up to below the price (and below the take-profit); short: mirrored."""
    if not is_on_tick(price):
        return _("Prices go in steps of 0.5.")
    long, liq = trade.side == "buy", {"liq": trade.liquidation}
    if long and price < trade.liquidation:
        return _("A long's stop-loss must be at or above its liquidation price (%(liq)s).") % liq
    if not long and price > trade.liquidation:
        return _("A short's stop-loss must be at or below its liquidation price (%(liq)s).") % liq
    if last is not None and long and price >= last:
        return _("A long's stop-loss must be below the current price (%(last)s).") % {"last": last}
    if last is not None and not long and price <= last:
        return _("A short's stop-loss must be above the current price (%(last)s).") % {"last": last}
    if trade.takeprofit and (price >= trade.takeprofit if long else price <= trade.takeprofit):
        return _("The stop-loss must be on the losing side of the take-profit (%(tp)s).") % {"tp": trade.takeprofit}
    return None


def takeprofit_error(trade: TrackedTrade, price: Decimal, last: Decimal | None) -> str | None:
    """Why the exchange would refuse this take-profit (long: above the price and the stop-loss; short: below)."""
    if not is_on_tick(price):
        return _("Prices go in steps of 0.5.")
    long = trade.side == "buy"
    if last is not None and long and price <= last:
        return _("A long's take-profit must be above the current price (%(last)s).") % {"last": last}
    if last is not None and not long and price >= last:
        return _("A short's take-profit must be below the current price (%(last)s).") % {"last": last}
    if trade.stoploss and (price <= trade.stoploss if long else price >= trade.stoploss):
        return _("The take-profit must be on the winning side of the stop-loss (%(sl)s).") % {"sl": trade.stoploss}
    return None


def add_margin_error(trade: TrackedTrade, amount: int) -> str | None:
    """Why the exchange would refuse to add ``amount`` sats (more than the free balance; leverage below 1)."""
    free = trade.account.balance
    if free is not None and amount > free:
        return _("Only %(free)s sats are free on this account.") % {"free": free}
    if leverage_of(trade.quantity, trade.margin + amount, trade.entry_price) < 1:
        return _("That much margin would take the leverage below 1.")
    return None


def ask(
    account: ExchangeAccount, action: str, params: dict[str, object], *, trade_id: str, client_id: str
) -> OrderIntent | None:
    """Ask for one order; ``None`` when this form (its ``clientId``) already asked."""
    try:
        return request(account, action, params, trade_id=trade_id, origin=ORIGIN, client_id=client_id)
    except IntegrityError:
        if OrderIntent.objects.filter(client_id=client_id, account=account).exists():
            return None
        raise
