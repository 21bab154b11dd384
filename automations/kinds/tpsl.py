"""TP/SL management: move the take-profit or stop-loss, or close, when a trade's PnL crosses a trigger."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import ClassVar, Literal

from django.utils.translation import gettext as _

from automations.decisions import (
    ClosePosition,
    Decision,
    Evaluation,
    SetStopLoss,
    SetTakeProfit,
)
from automations.engine_common import (
    HUNDRED,
    Context,
    Problem,
    TradesWriter,
    breakeven_stoploss,
    check_stoploss,
    check_takeprofit,
    fmt,
    in_scope,
    rule_quote,
    skip_once,
)
from automations.kinds.base import KindDef, per_trade
from automations.marks import gettext_noop
from automations.specs import (
    ZERO,
    AccountState,
    FieldRule,
    KindConfig,
    MarketSnapshot,
    Memory,
    SpecError,
    TradeMemory,
    TradeState,
    _decimal,
    _positive_price,
    _price_rule,
    _trade_ids,
    _unused,
    one_of,
)
from automations.wording import TriggerNow, now_text, pct, price_for_pnl, scope, subject, usd
from lnmarkets.maths import (
    TICK,
    pnl,
    round_to_tick,
)

TpSlDirection = Literal["profit", "loss"]
TpSlAction = Literal["set_takeprofit", "set_stoploss", "breakeven", "trailing_stoploss", "close"]


# --- settings ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TpSlConfig(KindConfig):
    """TP/SL management: when signed PnL % ≥ +``trigger_percent`` (profit) or ≤ −``trigger_percent`` (loss), set a
    take-profit or stop-loss ``price``, move the stop-loss to break-even, start a trailing stop at
    ``trailing_distance`` USD, or close the trade.
    """

    kind: ClassVar[str] = "tpsl"
    direction: TpSlDirection
    trigger_percent: Decimal
    action: TpSlAction
    price: Decimal | None = None
    trailing_distance: Decimal | None = None
    trade_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        one_of(self.direction, "direction", "Direction", TpSlDirection)
        trigger = _decimal(self, "trigger_percent", self.trigger_percent, "Trigger percent")
        if trigger <= 0:
            raise SpecError("trigger_percent", f"Trigger percent must be greater than 0; got {trigger}.")
        if self.direction == "loss" and trigger >= HUNDRED:
            # PnL % cannot go below −100 % before liquidation, so a loss trigger at or past it never fires.
            raise SpecError("trigger_percent", "A loss trigger must be less than 100 % (liquidation comes first).")
        one_of(self.action, "action", "Action", TpSlAction)
        if self.action in ("set_takeprofit", "set_stoploss"):
            if self.price is None:
                raise SpecError("price", "Price is required to set a take-profit or a stop-loss.")
            _positive_price(self, "price", self.price, "Price")
        else:
            _unused("price", self.price, "Price", "to set a take-profit or a stop-loss")
        if self.action == "trailing_stoploss":
            if self.trailing_distance is None:
                raise SpecError("trailing_distance", "Trailing distance (USD) is required for a trailing stop-loss.")
            distance = _decimal(self, "trailing_distance", self.trailing_distance, "Trailing distance")
            if distance <= 0:
                raise SpecError("trailing_distance", f"Trailing distance must be greater than 0 USD; got {distance}.")
        else:
            _unused("trailing_distance", self.trailing_distance, "Trailing distance", "with a trailing stop-loss")
        if self.action == "breakeven" and self.direction == "loss":
            # A break-even stop sits above the bid of a losing long (below the ask of a losing short): never valid.
            raise SpecError("action", "Break-even needs the trade in profit: use it with the 'profit' direction.")
        _trade_ids(self, self.trade_ids)


RULES: tuple[FieldRule, ...] = (
    FieldRule("direction", "choice", required=True),
    FieldRule("trigger_percent", "percent", required=True, minimum=ZERO, min_open=True),
    FieldRule("action", "choice", required=True),
    _price_rule("price", required=True, when=(("action", ("set_takeprofit", "set_stoploss")),)),
    FieldRule(
        "trailing_distance",
        "usd",
        required=True,
        minimum=ZERO,
        min_open=True,
        when=(("action", ("trailing_stoploss",)),),
    ),
    FieldRule("trade_ids", "ids"),
)


# --- TP/SL -----------------------------------------------------------------------------------------------------------


def _evaluate_tpsl(ctx: Context, config: TpSlConfig, account: AccountState, memory: Memory) -> Evaluation:
    writer = TradesWriter(memory.trades)
    decisions: list[Decision] = []
    threshold = config.trigger_percent if config.direction == "profit" else -config.trigger_percent
    for trade in account.trades:
        if not in_scope(trade, config.trade_ids):
            continue
        before = writer.get(trade.id)
        decision, after = _tpsl_trade(ctx, config, trade, before, threshold)
        if after is not before:
            writer.put(trade.id, after)
        if decision is not None:
            decisions.append(decision)
    writer.prune(account, ctx.now)
    return Evaluation(tuple(decisions), writer.memory(memory), False)


def _tpsl_trade(
    ctx: Context, config: TpSlConfig, trade: TradeState, memory: TradeMemory, threshold: Decimal
) -> tuple[Decision | None, TradeMemory]:
    """One trade under TP/SL management: (decision or None, new trade memory)."""
    if memory.fired and config.action != "trailing_stoploss":
        return None, memory  # fires once per trade; only a trailing stop keeps deciding
    market = ctx.market
    long = trade.side == "buy"
    bid, ask = market.quote_for(trade.quantity)
    mark = bid if long else ask
    rule_bid, rule_ask = rule_quote(market, bid, ask)
    pl = pnl(trade.side, trade.quantity, trade.entry_price, mark)
    percent = Decimal(pl) * HUNDRED / Decimal(trade.margin)

    def inputs() -> dict[str, str]:
        data = ctx.market_inputs()
        data.update(
            {
                "direction": config.direction,
                "trigger_percent": str(config.trigger_percent),
                "mark": str(mark),
                "mark_rule": "bucket bid" if long else "bucket ask",
                "bid": str(bid),
                "ask": str(ask),
                "side": trade.side,
                "quantity": str(trade.quantity),
                "entry_price": str(trade.entry_price),
                "liquidation": str(trade.liquidation),
                "margin": str(trade.margin),
                "stoploss": str(trade.stoploss),
                "takeprofit": str(trade.takeprofit),
                "pnl_sats": str(pl),
                "pnl_percent": fmt(percent),
            }
        )
        return data

    if memory.fired:  # a trailing stop follows the best mark from its trigger on, whatever the PnL does
        return _trail(ctx, config, trade, memory, mark, rule_bid, rule_ask, inputs, first=False)
    triggered = percent >= threshold if config.direction == "profit" else percent <= threshold
    if not triggered:
        return None, (memory if memory.skip is None else replace(memory, skip=None))
    sign = "≥ +" if config.direction == "profit" else "≤ −"
    why = f"PnL {fmt(percent)} % {sign}{config.trigger_percent} %"
    action = config.action
    if action == "close":
        return ClosePosition(trade.id, f"{why}: closing the trade.", inputs=inputs()), _fire(ctx, memory)
    if action == "trailing_stoploss":
        return _trail(ctx, config, trade, memory, mark, rule_bid, rule_ask, inputs, first=True)
    decision: Decision
    problem: Problem | None
    if action == "set_takeprofit":
        assert config.price is not None  # guaranteed by TpSlConfig validation
        problem = check_takeprofit(trade, config.price, rule_bid, rule_ask)
        decision = SetTakeProfit(trade.id, config.price, f"{why}: take-profit to {config.price}.", inputs=inputs())
    else:
        price = config.price if action == "set_stoploss" else breakeven_stoploss(trade)
        if price is None:
            return skip_once(memory, ("no_breakeven", f"{why}, but no break-even price exists."), trade.id, inputs)
        problem = None
        if action == "breakeven" and trade.stoploss and (price <= trade.stoploss if long else price >= trade.stoploss):
            problem = ("already_better", f"The stop-loss {trade.stoploss} is already at or past break-even {price}.")
        problem = problem or check_stoploss(trade, price, rule_bid, rule_ask)
        label = "break-even stop-loss" if action == "breakeven" else "stop-loss"
        decision = SetStopLoss(trade.id, price, f"{why}: {label} to {price}.", inputs=inputs())
    if problem is None:
        return decision, _fire(ctx, memory)
    code, text = problem
    if code in ("unchanged", "already_better"):
        # The trade already has what the trigger asks for: report it once and consider the trigger done.
        skip, _ = skip_once(memory, (code, f"{why}; nothing to do: {text}"), trade.id, inputs)
        return skip, replace(_fire(ctx, memory), skip=code)
    return skip_once(memory, (code, f"{why}; not sent: {text}"), trade.id, inputs)


def _fire(ctx: Context, memory: TradeMemory) -> TradeMemory:
    """TP/SL memory once its trigger has been acted on for this trade."""
    return replace(memory, fired=True, last_action_at=ctx.now, skip=None)


def _trail(
    ctx: Context,
    config: TpSlConfig,
    trade: TradeState,
    memory: TradeMemory,
    mark: Decimal,
    rule_bid: Decimal,
    rule_ask: Decimal,
    inputs: Callable[[], dict[str, str]],
    *,
    first: bool,
) -> tuple[Decision | None, TradeMemory]:
    """Follow the best mark; propose ``best ∓ distance`` when it tightens the stop by at least one tick."""
    assert config.trailing_distance is not None  # guaranteed by TpSlConfig validation
    long = trade.side == "buy"
    best = memory.trail_best
    if best is None or (mark > best if long else mark < best):
        best = mark
    if first:
        memory = replace(memory, fired=True, trail_best=best, last_action_at=ctx.now)
    elif best != memory.trail_best:
        memory = replace(memory, trail_best=best)
    if long:
        candidate = round_to_tick(best - config.trailing_distance, ROUND_FLOOR)
    else:
        candidate = round_to_tick(best + config.trailing_distance, ROUND_CEILING)
    references = [price for price in (trade.stoploss, memory.trail_stoploss) if price]
    if references:
        reference = max(references) if long else min(references)
        if (candidate - reference if long else reference - candidate) < TICK:
            if first:
                problem = ("already_tighter", f"Trailing stop {candidate} would not tighten the stop-loss {reference}.")
                return skip_once(memory, problem, trade.id, inputs)
            return None, memory
    problem_ = check_stoploss(trade, candidate, rule_bid, rule_ask)
    if problem_ is not None:
        return skip_once(memory, (problem_[0], f"Trailing stop-loss not moved: {problem_[1]}"), trade.id, inputs)
    data = inputs()
    data.update({"trail_best": str(best), "trailing_distance": str(config.trailing_distance)})
    start = "started" if first else "moved"
    reason = f"Trailing stop-loss {start}: best mark {best} − distance gives {candidate}."
    if not long:
        reason = f"Trailing stop-loss {start}: best mark {best} + distance gives {candidate}."
    memory = replace(memory, trail_stoploss=candidate, last_action_at=ctx.now, skip=None)
    return SetStopLoss(trade.id, candidate, reason, inputs=data), memory


# --- in words ----------------------------------------------------------------------------------------------------


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


def _tpsl_now(config: TpSlConfig, market: MarketSnapshot, trade: TradeState) -> TriggerNow:
    bid, ask = market.quote_for(trade.quantity)
    mark = bid if trade.is_long else ask
    pl = pnl(trade.side, trade.quantity, trade.entry_price, mark)
    value = Decimal(pl) * HUNDRED / Decimal(trade.margin)
    threshold = config.trigger_percent if config.direction == "profit" else -config.trigger_percent
    met = value >= threshold if config.direction == "profit" else value <= threshold
    price = price_for_pnl(trade, threshold * Decimal(trade.margin) / HUNDRED)
    return TriggerNow(subject(trade), now_text(_("PnL"), value, met, price), met, price, trade.id)


def _summary(config: TpSlConfig) -> str:
    return _("When %(trigger)s, %(action)s (once per trade), on %(scope)s.") % {
        "trigger": _tpsl_trigger(config),
        "action": _tpsl_action(config),
        "scope": scope(config.trade_ids),
    }


KIND = KindDef(
    key=TpSlConfig.kind,
    label=gettext_noop("TP/SL management"),
    description=gettext_noop(
        "Moves the take-profit or stop-loss, or closes the trade, when its PnL crosses a trigger."
    ),
    config_type=TpSlConfig,
    rules=RULES,
    evaluate=_evaluate_tpsl,
    summary=_summary,
    triggers_now=per_trade(_tpsl_now),
    form_path="automations.forms.TpSlForm",
    # A changed rule is a new rule: it should fire on trades the old one already handled (memory reset).
    rule_fields=("direction", "trigger_percent", "action", "price", "trailing_distance"),
)
