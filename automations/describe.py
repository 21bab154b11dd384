"""Automations in words: a one-sentence summary of a config, and how far each trigger is from the market now.

Pure functions of the engine's typed configs and snapshots (``automations.specs``), translated with gettext and
formatted for the active locale (``django.utils.formats``). The trigger arithmetic mirrors the engine's
(``automations.engine``): the Margin Guard marks a long at min(last, bucket bid) and a short at max(last, bucket
ask); TP/SL marks at the bucket bid (long) or ask (short).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import ExchangeAccount
from automations.specs import (
    AutoEntryConfig,
    AutomationConfig,
    MarginGuardConfig,
    MarketSnapshot,
    TpSlConfig,
    TradeState,
)
from lnmarkets.maths import margin_ratio, pnl, round_to_tick

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


# --- one sentence ----------------------------------------------------------------------------------------------------


def _scope(trade_ids: tuple[str, ...]) -> str:
    if not trade_ids:
        return _("every running trade it manages")
    return ngettext("trade %(ids)s", "trades %(ids)s", len(trade_ids)) % {"ids": ", ".join(trade_ids)}


def _guard_trigger(config: MarginGuardConfig) -> str:
    if config.trigger == "liquidation_distance":
        return _("when the distance to liquidation falls to %(threshold)s") % {"threshold": pct(config.threshold)}
    return _("when LN Markets' margin ratio reaches %(threshold)s") % {"threshold": pct(config.threshold)}


def _guard_action(config: MarginGuardConfig) -> str:
    if config.action == "close":
        return _("closes the trade at market")
    if config.action == "reduce":
        assert config.reduce_percent is not None
        return _("reduces the trade by %(percent)s (closes it and reopens the rest)") % {
            "percent": pct(config.reduce_percent)
        }
    if config.add_margin_mode == "fixed":
        assert config.add_margin_amount is not None
        text = _("adds %(amount)s of margin") % {"amount": sats(config.add_margin_amount)}
    else:
        assert config.target_distance is not None
        text = _("adds enough margin to bring the distance to liquidation back to %(target)s") % {
            "target": pct(config.target_distance)
        }
    if config.max_added_per_trade is not None:
        text += _(" (at most %(cap)s per trade)") % {"cap": sats(config.max_added_per_trade)}
    return text


def summary(config: AutomationConfig) -> str:
    """One sentence saying what the automation does, e.g. “Closes the trade at market when the distance to
    liquidation falls to 5 %, on every running trade it manages; then waits 60 seconds before acting on it again.”"""
    if isinstance(config, MarginGuardConfig):
        return _("%(action)s %(trigger)s, on %(scope)s; then waits %(cooldown)s before acting on that trade again.") % {
            "action": _guard_action(config).capitalize(),
            "trigger": _guard_trigger(config),
            "scope": _scope(config.trade_ids),
            "cooldown": seconds(config.cooldown_seconds),
        }
    if isinstance(config, TpSlConfig):
        return _("When %(trigger)s, %(action)s (once per trade), on %(scope)s.") % {
            "trigger": _tpsl_trigger(config),
            "action": _tpsl_action(config),
            "scope": _scope(config.trade_ids),
        }
    return _entry_summary(config)


def _tpsl_trigger(config: TpSlConfig) -> str:
    if config.direction == "profit":
        return _("a trade's profit reaches %(percent)s of its margin") % {"percent": pct(config.trigger_percent)}
    return _("a trade's loss reaches %(percent)s of its margin") % {"percent": pct(config.trigger_percent)}


def _tpsl_action(config: TpSlConfig) -> str:
    if config.action == "set_takeprofit":
        assert config.price is not None
        return _("sets its take-profit to %(price)s") % {"price": usd(config.price)}
    if config.action == "set_stoploss":
        assert config.price is not None
        return _("sets its stop-loss to %(price)s") % {"price": usd(config.price)}
    if config.action == "breakeven":
        return _("moves its stop-loss to break-even (entry plus fees)")
    if config.action == "trailing_stoploss":
        assert config.trailing_distance is not None
        return _("starts a stop-loss that trails the best price by %(distance)s") % {
            "distance": usd(config.trailing_distance)
        }
    return _("closes it at market")


def _entry_summary(config: AutoEntryConfig) -> str:
    side = _("a long") if config.side == "buy" else _("a short")
    if config.quantity is not None:
        size = _("of %(quantity)s") % {"quantity": usd(Decimal(config.quantity))}
    else:
        assert config.margin is not None
        size = _("with %(margin)s of margin") % {"margin": sats(config.margin)}
    if config.trigger == "immediate":
        when = _("at once")
    elif config.trigger == "price_below":
        assert config.trigger_price is not None
        when = _("when the last price falls to %(price)s or below") % {"price": usd(config.trigger_price)}
    else:
        assert config.trigger_price is not None
        when = _("when the last price rises to %(price)s or above") % {"price": usd(config.trigger_price)}
    text = _("Opens %(side)s %(size)s at %(leverage)s× leverage %(when)s") % {
        "side": side,
        "size": size,
        "leverage": num(config.leverage),
        "when": when,
    }
    exits = []
    if config.stoploss is not None:
        exits.append(_("a stop-loss at %(price)s") % {"price": usd(config.stoploss)})
    elif config.stoploss_percent is not None:
        exits.append(_("a stop-loss %(percent)s from the fill") % {"percent": pct(config.stoploss_percent)})
    if config.takeprofit is not None:
        exits.append(_("a take-profit at %(price)s") % {"price": usd(config.takeprofit)})
    elif config.takeprofit_percent is not None:
        exits.append(_("a take-profit %(percent)s from the fill") % {"percent": pct(config.takeprofit_percent)})
    if exits:
        text += _(", with %(exits)s") % {"exits": _(" and ").join(exits)}
    if config.repeat_count:
        text += ngettext(
            "; then once more, at least %(wait)s later",
            "; then up to %(n)s more times, at least %(wait)s apart",
            config.repeat_count,
        ) % {"n": num(config.repeat_count), "wait": seconds(config.repeat_cooldown_seconds)}
    return text + "."


# --- how far each trigger is now -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TriggerNow:
    """One trade (or, for Auto Entry, the market) against the trigger: a sentence and whether it is met now."""

    subject: str
    text: str
    met: bool
    price: Decimal | None = None  # the price at which it acts (the chart draws it), when there is one
    trade_id: str = ""


def _price_for_pnl(trade: TradeState, target_pl: Decimal) -> Decimal | None:
    """The exit price at which the trade's PnL is ``target_pl`` sats (inverse of ``lnmarkets.maths.pnl``)."""
    with localcontext() as ctx:
        ctx.prec = 40
        per_usd = target_pl / (Decimal(trade.quantity) * SATS)
        inverse = 1 / trade.entry_price - per_usd if trade.is_long else 1 / trade.entry_price + per_usd
        if inverse <= 0:
            return None
        return round_to_tick(1 / inverse)


def _subject(trade: TradeState) -> str:
    side = _("long") if trade.is_long else _("short")
    return _("%(side)s %(quantity)s, trade %(id)s") % {
        "side": side,
        "quantity": usd(Decimal(trade.quantity)),
        "id": trade.id[:8],
    }


def _guard_now(config: MarginGuardConfig, market: MarketSnapshot, trade: TradeState) -> TriggerNow:
    bid, ask = market.quote_for(trade.quantity)
    mark = min(market.last_price, bid) if trade.is_long else max(market.last_price, ask)
    if config.trigger == "liquidation_distance":
        gap = mark - trade.liquidation if trade.is_long else trade.liquidation - mark
        value = gap * HUNDRED / mark
        met = value <= config.threshold
        factor = 1 - config.threshold / HUNDRED if trade.is_long else 1 + config.threshold / HUNDRED
        price: Decimal | None = round_to_tick(trade.liquidation / factor)
        what = _("distance to liquidation")
    else:
        value = margin_ratio(
            trade.maintenance_margin, trade.margin, pnl(trade.side, trade.quantity, trade.entry_price, mark)
        )
        met = value >= config.threshold
        target = Decimal(trade.maintenance_margin) * HUNDRED / config.threshold
        price = _price_for_pnl(trade, target - trade.maintenance_margin - trade.margin)
        what = _("margin ratio")
    return TriggerNow(_subject(trade), _now_text(what, value, met, price), met, price, trade.id)


def _now_text(what: str, value: Decimal, met: bool, price: Decimal | None) -> str:
    if met:
        return _("%(what)s now %(value)s: the trigger is met.") % {"what": what.capitalize(), "value": pct(value)}
    if price is None:
        return _("%(what)s now %(value)s.") % {"what": what.capitalize(), "value": pct(value)}
    return _("%(what)s now %(value)s; it triggers at a price of %(price)s.") % {
        "what": what.capitalize(),
        "value": pct(value),
        "price": usd(price),
    }


def _tpsl_now(config: TpSlConfig, market: MarketSnapshot, trade: TradeState) -> TriggerNow:
    bid, ask = market.quote_for(trade.quantity)
    mark = bid if trade.is_long else ask
    pl = pnl(trade.side, trade.quantity, trade.entry_price, mark)
    value = Decimal(pl) * HUNDRED / Decimal(trade.margin)
    threshold = config.trigger_percent if config.direction == "profit" else -config.trigger_percent
    met = value >= threshold if config.direction == "profit" else value <= threshold
    price = _price_for_pnl(trade, threshold * Decimal(trade.margin) / HUNDRED)
    return TriggerNow(_subject(trade), _now_text(_("PnL"), value, met, price), met, price, trade.id)


def _entry_now(config: AutoEntryConfig, market: MarketSnapshot) -> TriggerNow:
    last = market.last_price
    subject = _("Market")
    if config.trigger == "immediate" or config.trigger_price is None:
        return TriggerNow(subject, _("Last price now %(price)s: it enters at once.") % {"price": usd(last)}, True)
    gap = (last - config.trigger_price) * HUNDRED / last
    met = last <= config.trigger_price if config.trigger == "price_below" else last >= config.trigger_price
    if met:
        text = _("Last price now %(price)s: the trigger is met.") % {"price": usd(last)}
    else:
        text = _("Last price now %(price)s, %(gap)s away from the trigger at %(trigger)s.") % {
            "price": usd(last),
            "gap": pct(abs(gap)),
            "trigger": usd(config.trigger_price),
        }
    return TriggerNow(subject, text, met, config.trigger_price)


def triggers_now(config: AutomationConfig, market: MarketSnapshot, trades: tuple[TradeState, ...]) -> list[TriggerNow]:
    """How far each trigger is: one row per managed trade in scope (Margin Guard, TP/SL), or the market (Auto
    Entry)."""
    if isinstance(config, AutoEntryConfig):
        return [_entry_now(config, market)]
    rows = []
    for trade in trades:
        if not trade.managed or (config.trade_ids and trade.id not in config.trade_ids):
            continue
        if isinstance(config, MarginGuardConfig):
            rows.append(_guard_now(config, market, trade))
        else:
            rows.append(_tpsl_now(config, market, trade))
    return rows


@dataclass(frozen=True, slots=True)
class Explained:
    """What the form and the preview show under “What it will do”."""

    summary: str = ""
    triggers: tuple[TriggerNow, ...] = ()
    market_missing: bool = False
    account: object | None = None


def explain(config: AutomationConfig | None, account: ExchangeAccount | None, *, live: bool = True) -> Explained:
    """The sentence for ``config`` and, when ``live`` and an account is given, how far each trigger is now on the
    account's running trades and the network's live price (nothing is sent or stored)."""
    if config is None:
        return Explained()
    text = summary(config)
    if account is None or not live:
        return Explained(summary=text, account=account)
    from automations.services.evaluation import account_state_of
    from automations.services.management import preview_market

    market = preview_market(account.network)
    if market is None:
        return Explained(summary=text, market_missing=True, account=account)
    trades = account_state_of(account).trades
    return Explained(summary=text, triggers=tuple(triggers_now(config, market, trades)), account=account)
