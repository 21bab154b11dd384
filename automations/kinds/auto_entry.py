"""Auto Entry: open a trade at once or when the price crosses a trigger; optionally repeat."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import ClassVar, Literal

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from automations.decisions import (
    Decision,
    Evaluation,
    OpenPosition,
    Skip,
)
from automations.engine_common import (
    HUNDRED,
    Context,
    Problem,
    cooled,
    stoploss_from_percent,
)
from automations.kinds.base import KindDef
from automations.marks import gettext_noop
from automations.specs import (
    MAX_LEVERAGE,
    MAX_QUANTITY,
    ZERO,
    AccountState,
    FieldRule,
    KindConfig,
    MarketSnapshot,
    Memory,
    SpecError,
    TradeState,
    _decimal,
    _integer,
    _pct_rule,
    _percent_open,
    _positive_price,
    _price_rule,
    _unused,
    one_of,
)
from automations.wording import TriggerNow, num, pct, sats, seconds, usd
from lnmarkets.maths import (
    Side,
    fee,
    initial_liquidation_price,
    margin_from_quantity,
    quantity_from_margin,
)

EntryTrigger = Literal["immediate", "price_below", "price_above"]


# --- settings ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AutoEntryConfig(KindConfig):
    """Auto Entry: open a market trade (quantity USD xor margin sats) at once, or when the last price is ≤ / ≥
    ``trigger_price``; optional SL/TP as a price or as a percentage from the fill; ``repeat_count`` extra fires.
    """

    kind: ClassVar[str] = "auto_entry"
    side: Side
    leverage: Decimal
    quantity: int | None
    margin: int | None
    trigger: EntryTrigger
    trigger_price: Decimal | None = None
    stoploss: Decimal | None = None
    stoploss_percent: Decimal | None = None
    takeprofit: Decimal | None = None
    takeprofit_percent: Decimal | None = None
    repeat_count: int = 0
    repeat_cooldown_seconds: int = 0

    def __post_init__(self) -> None:
        one_of(self.side, "side", "Side", Side)
        leverage = _decimal(self, "leverage", self.leverage, "Leverage")
        if not 1 <= leverage <= MAX_LEVERAGE:
            raise SpecError("leverage", f"Leverage must be between 1 and 100; got {leverage}.")
        self._validate_size()
        one_of(self.trigger, "trigger", "Trigger", EntryTrigger)
        if self.trigger == "immediate":
            _unused("trigger_price", self.trigger_price, "Trigger price", "with a price trigger")
        elif self.trigger_price is None:
            raise SpecError("trigger_price", "Trigger price is required for a price trigger.")
        else:
            _positive_price(self, "trigger_price", self.trigger_price, "Trigger price")
        self._validate_exits()
        if _integer("repeat_count", self.repeat_count, "Repeat count") < 0:
            raise SpecError("repeat_count", "Repeat count must be 0 or more.")
        if _integer("repeat_cooldown_seconds", self.repeat_cooldown_seconds, "Repeat cooldown") < 0:
            raise SpecError("repeat_cooldown_seconds", "Repeat cooldown must be 0 seconds or more.")

    def _validate_size(self) -> None:
        if (self.quantity is None) == (self.margin is None):
            raise SpecError("quantity", "Give exactly one of quantity (USD) or margin (sats).")
        if self.quantity is not None:
            quantity = _integer("quantity", self.quantity, "Quantity")
            if not 1 <= quantity <= MAX_QUANTITY:
                raise SpecError("quantity", f"Quantity must be between 1 and 500,000 USD; got {quantity}.")
        if self.margin is not None and _integer("margin", self.margin, "Margin") < 1:
            raise SpecError("margin", "Margin must be at least 1 sat.")

    def _validate_exits(self) -> None:
        if self.stoploss is not None and self.stoploss_percent is not None:
            raise SpecError("stoploss", "Give the stop-loss as a price or as a percentage, not both.")
        if self.takeprofit is not None and self.takeprofit_percent is not None:
            raise SpecError("takeprofit", "Give the take-profit as a price or as a percentage, not both.")
        stoploss = None if self.stoploss is None else _positive_price(self, "stoploss", self.stoploss, "Stop-loss")
        takeprofit = (
            None if self.takeprofit is None else _positive_price(self, "takeprofit", self.takeprofit, "Take-profit")
        )
        if self.stoploss_percent is not None:
            _percent_open(self, "stoploss_percent", self.stoploss_percent, "Stop-loss percent")
        if self.takeprofit_percent is not None:
            _percent_open(self, "takeprofit_percent", self.takeprofit_percent, "Take-profit percent")
        if stoploss is not None and takeprofit is not None:
            if self.side == "buy" and stoploss >= takeprofit:
                raise SpecError("stoploss", "A long's stop-loss must be below its take-profit.")
            if self.side == "sell" and stoploss <= takeprofit:
                raise SpecError("stoploss", "A short's stop-loss must be above its take-profit.")
        if self.trigger_price is not None and self.trigger != "immediate":
            # The fill will be near the trigger price: an exit on the wrong side of it can never be accepted.
            long = self.side == "buy"
            if stoploss is not None and (stoploss >= self.trigger_price if long else stoploss <= self.trigger_price):
                side_word = "below" if long else "above"
                raise SpecError("stoploss", f"The stop-loss must be {side_word} the trigger price.")
            if takeprofit is not None and (
                takeprofit <= self.trigger_price if long else takeprofit >= self.trigger_price
            ):
                side_word = "above" if long else "below"
                raise SpecError("takeprofit", f"The take-profit must be {side_word} the trigger price.")


RULES: tuple[FieldRule, ...] = (
    FieldRule("side", "choice", required=True),
    FieldRule("leverage", "leverage", required=True, minimum=Decimal(1), maximum=MAX_LEVERAGE),
    FieldRule("quantity", "usd", minimum=Decimal(1), maximum=Decimal(MAX_QUANTITY)),
    FieldRule("margin", "sats", minimum=Decimal(1)),
    FieldRule("trigger", "choice", required=True),
    _price_rule("trigger_price", required=True, when=(("trigger", ("price_below", "price_above")),)),
    _price_rule("stoploss"),
    _pct_rule("stoploss_percent"),
    _price_rule("takeprofit"),
    _pct_rule("takeprofit_percent"),
    FieldRule("repeat_count", "count", required=True, minimum=ZERO),
    FieldRule("repeat_cooldown_seconds", "seconds", required=True, minimum=ZERO),
)


# --- Auto Entry ------------------------------------------------------------------------------------------------------


def _evaluate_auto_entry(ctx: Context, config: AutoEntryConfig, account: AccountState, memory: Memory) -> Evaluation:
    total_fires = 1 + config.repeat_count
    if memory.fires >= total_fires:
        return Evaluation((), memory, True)
    market = ctx.market
    last = market.last_price
    if config.trigger == "immediate":
        in_zone = True
    else:
        assert config.trigger_price is not None  # guaranteed by AutoEntryConfig validation
        in_zone = last <= config.trigger_price if config.trigger == "price_below" else last >= config.trigger_price
    armed = memory.armed
    skip = memory.skip
    if not in_zone and not ctx.stale:
        # A fresh price outside the zone re-arms a price trigger and ends the current skip episode.
        armed = True
        skip = None
    ready = config.trigger == "immediate" or armed
    rested = memory.last_fire_at is None or cooled(
        ctx.now - memory.last_fire_at, timedelta(seconds=config.repeat_cooldown_seconds)
    )
    decisions: tuple[Decision, ...] = ()
    fires, last_fire_at = memory.fires, memory.last_fire_at
    if in_zone and ready and rested:
        decision, problem_code = _entry_decision(ctx, config, account)
        if problem_code is None:
            decisions = (decision,)
            fires, last_fire_at, armed, skip = fires + 1, ctx.now, False, None
        elif problem_code != skip:
            decisions = (decision,)
            skip = problem_code
    if (armed, skip, fires) == (memory.armed, memory.skip, memory.fires):
        new_memory = memory
    else:
        new_memory = Memory(trades=memory.trades, fires=fires, last_fire_at=last_fire_at, armed=armed, skip=skip)
    return Evaluation(decisions, new_memory, fires >= total_fires)


def _entry_decision(ctx: Context, config: AutoEntryConfig, account: AccountState) -> tuple[Decision, str | None]:
    """The OpenPosition to send, or a Skip with its code when something blocks the entry."""
    market = ctx.market
    data = ctx.market_inputs()
    data.update(
        {
            "trigger": config.trigger,
            "trigger_price": str(config.trigger_price),
            "side": config.side,
            "leverage": str(config.leverage),
            "free_balance": str(account.balance),
        }
    )
    if config.trigger == "immediate":
        why = "Immediate entry"
    else:
        relation = "≤" if config.trigger == "price_below" else "≥"
        why = f"Last price {market.last_price} {relation} {config.trigger_price}"
    problem: Problem | None = None
    if account.kill_switch:
        problem = ("kill_switch", f"{why}, but the kill switch is on: no new entries.")
    elif account.entries_halted:
        problem = ("entries_halted", f"{why}, but entries are halted for this account (failure breaker).")
    elif ctx.stale:
        age = f"{ctx.age.total_seconds():.1f}"
        problem = ("stale_price", f"{why}, but the price is {age} s old (limit {ctx.spec.max_price_age_seconds} s).")
    else:
        problem = _entry_sizing_problem(config, market, account, data, why)
    if problem is not None:
        return Skip(problem[1], code=problem[0], inputs=data), problem[0]
    size = f"{config.quantity} USD" if config.quantity is not None else f"{config.margin} sats of margin"
    reason = f"{why}: opening a {'long' if config.side == 'buy' else 'short'} of {size} at {config.leverage}x."
    decision = OpenPosition(
        config.side,
        config.leverage,
        config.quantity,
        config.margin,
        config.stoploss,
        config.takeprofit,
        config.stoploss_percent,
        config.takeprofit_percent,
        reason,
        inputs=data,
    )
    return decision, None


def _entry_sizing_problem(
    config: AutoEntryConfig, market: MarketSnapshot, account: AccountState, data: dict[str, str], why: str
) -> Problem | None:
    """Estimate the fill, margin, fee reserves and initial liquidation; check size, balance and exits."""
    long = config.side == "buy"
    leverage = config.leverage
    if config.quantity is not None:
        quantity = config.quantity
        bid, ask = market.quote_for(quantity)
        fill = ask if long else bid
        margin = margin_from_quantity(quantity, fill, leverage)
    else:
        assert config.margin is not None  # guaranteed by AutoEntryConfig validation
        margin = config.margin
        first = quantity_from_margin(margin, market.ask if long else market.bid, leverage)
        bid, ask = market.quote_for(first)
        fill = ask if long else bid
        quantity = quantity_from_margin(margin, fill, leverage)
        if quantity < 1:
            return "too_small", f"{why}, but {margin} sats at {leverage}x buy less than 1 USD."
        if quantity > MAX_QUANTITY:
            return "too_large", f"{why}, but {margin} sats at {leverage}x exceed 500,000 USD."
    liquidation = initial_liquidation_price(config.side, quantity, fill, leverage)
    reserves = fee(quantity, fill) + fee(quantity, liquidation)
    data.update(
        {
            "quantity": str(quantity),
            "bid": str(bid),
            "ask": str(ask),
            "estimated_fill": str(fill),
            "estimated_liquidation": str(liquidation),
            "margin_needed": str(margin),
            "fee_reserves": str(reserves),
        }
    )
    if margin + reserves > account.balance:
        return (
            "insufficient_balance",
            f"{why}, but the free balance {account.balance} sats cannot cover margin {margin} + fee reserves "
            f"{reserves} sats.",
        )
    stoploss = config.stoploss
    if config.stoploss_percent is not None:
        stoploss = stoploss_from_percent(config.side, fill, config.stoploss_percent)
        data["estimated_stoploss"] = str(stoploss)
    if stoploss is not None and not (
        liquidation <= stoploss < min(bid, fill) if long else max(ask, fill) < stoploss <= liquidation
    ):
        return (
            "invalid_stoploss",
            f"{why}, but the stop-loss {stoploss} would be refused (estimated fill {fill}, liquidation {liquidation}).",
        )
    if config.takeprofit is not None and not (
        config.takeprofit > max(ask, fill) if long else config.takeprofit < min(bid, fill)
    ):
        return (
            "invalid_takeprofit",
            f"{why}, but the take-profit {config.takeprofit} would be refused (estimated fill {fill}).",
        )
    return None


# --- in words ----------------------------------------------------------------------------------------------------


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


def _triggers_now(config: AutoEntryConfig, market: MarketSnapshot, trades: tuple[TradeState, ...]) -> list[TriggerNow]:
    return [_entry_now(config, market)]


KIND = KindDef(
    key=AutoEntryConfig.kind,
    label=gettext_noop("Auto Entry"),
    description=gettext_noop("Opens a trade at once, or when the price crosses a trigger; optionally repeats."),
    config_type=AutoEntryConfig,
    rules=RULES,
    evaluate=_evaluate_auto_entry,
    summary=_entry_summary,
    triggers_now=_triggers_now,
    form_path="automations.forms.AutoEntryForm",
    on_trades=False,
)
