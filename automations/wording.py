"""Numbers, prices and sentences in the reader's language: the pieces every kind's sentences are made of.

Translated with gettext and formatted for the active locale (``django.utils.formats``); no models, no services, so
the kind modules (``automations.kinds``) can use them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from automations.specs import TradeState
from lnmarkets.maths import round_to_tick

SATS = Decimal(100_000_000)
HUNDRED = Decimal(100)


def num(value: Decimal | int, places: int = 0) -> str:
    """A number grouped and with the decimal mark of the active locale (95,450.5 in English, 95.450,5 in pt-BR)."""
    if isinstance(value, Decimal):
        value = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP) if places else value
        if value == value.to_integral_value():
            value = value.quantize(Decimal(1))
    return number_format(value, force_grouping=True)


def pct(value: Decimal) -> str:
    return f"{num(value.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP))} %"


def usd(value: Decimal) -> str:
    return _("%(price)s USD") % {"price": num(value)}


def sats(value: int) -> str:
    return ngettext("%(n)s sat", "%(n)s sats", value) % {"n": num(value)}


def seconds(value: int) -> str:
    return ngettext("%(n)s second", "%(n)s seconds", value) % {"n": num(value)}


def scope(trade_ids: tuple[str, ...]) -> str:
    if not trade_ids:
        return _("every running trade it manages")
    return ngettext("trade %(ids)s", "trades %(ids)s", len(trade_ids)) % {"ids": ", ".join(trade_ids)}


@dataclass(frozen=True, slots=True)
class TriggerNow:
    """One trade (or, for Auto Entry, the market) against the trigger: a sentence and whether it is met now."""

    subject: str
    text: str
    met: bool
    price: Decimal | None = None  # the price at which it acts (the chart draws it), when there is one
    trade_id: str = ""


def price_for_pnl(trade: TradeState, target_pl: Decimal) -> Decimal | None:
    """The exit price at which the trade's PnL is ``target_pl`` sats (inverse of ``lnmarkets.maths.pnl``)."""
    with localcontext() as ctx:
        ctx.prec = 40
        per_usd = target_pl / (Decimal(trade.quantity) * SATS)
        inverse = 1 / trade.entry_price - per_usd if trade.is_long else 1 / trade.entry_price + per_usd
        if inverse <= 0:
            return None
        return round_to_tick(1 / inverse)


def subject(trade: TradeState) -> str:
    side = _("long") if trade.is_long else _("short")
    return _("%(side)s %(quantity)s, trade %(id)s") % {
        "side": side,
        "quantity": usd(Decimal(trade.quantity)),
        "id": trade.id[:8],
    }


def now_text(what: str, value: Decimal, met: bool, price: Decimal | None) -> str:
    if met:
        return _("%(what)s now %(value)s: the trigger is met.") % {"what": what.capitalize(), "value": pct(value)}
    if price is None:
        return _("%(what)s now %(value)s.") % {"what": what.capitalize(), "value": pct(value)}
    return _("%(what)s now %(value)s; it triggers at a price of %(price)s.") % {
        "what": what.capitalize(),
        "value": pct(value),
        "price": usd(price),
    }
