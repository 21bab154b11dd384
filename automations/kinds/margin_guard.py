"""Margin Guard: keep running trades away from liquidation (close, reduce, or add margin)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from typing import ClassVar, Literal

from django.utils.translation import gettext as _

from automations.decisions import (
    AddMargin,
    ClosePosition,
    Decision,
    Evaluation,
    ReducePosition,
)
from automations.engine_common import (
    HUNDRED,
    ONE,
    Context,
    Problem,
    TradesWriter,
    cooled,
    fmt,
    in_scope,
    signed_distance,
    skip_once,
)
from automations.kinds.base import KindDef, per_trade
from automations.marks import gettext_noop
from automations.specs import (
    MAX_LEVERAGE,
    ZERO,
    AccountState,
    FieldRule,
    KindConfig,
    MarketSnapshot,
    Memory,
    SpecError,
    TradeMemory,
    TradeState,
    _integer,
    _pct_rule,
    _percent_open,
    _trade_ids,
    _unused,
    one_of,
)
from automations.wording import TriggerNow, now_text, pct, price_for_pnl, sats, scope, seconds, subject
from lnmarkets.maths import (
    SATS,
    initial_liquidation_price,
    liquidation_price,
    margin_ratio,
    pnl,
    round_to_tick,
)

MarginGuardTrigger = Literal["margin_ratio", "liquidation_distance"]
MarginGuardAction = Literal["close", "reduce", "add_margin"]
AddMarginMode = Literal["fixed", "restore_distance"]


# --- settings ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarginGuardConfig(KindConfig):
    """Margin Guard: when a trade's margin ratio ≥ ``threshold`` % or its distance to liquidation ≤ ``threshold`` %,
    close it, reduce it by ``reduce_percent`` %, or add margin (fixed sats, or enough to restore ``target_distance``).
    """

    kind: ClassVar[str] = "margin_guard"
    trigger: MarginGuardTrigger
    threshold: Decimal
    action: MarginGuardAction
    reduce_percent: Decimal | None = None
    add_margin_mode: AddMarginMode | None = None
    add_margin_amount: int | None = None
    target_distance: Decimal | None = None
    max_added_per_trade: int | None = None
    cooldown_seconds: int = 60
    trade_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        one_of(self.trigger, "trigger", "Trigger", MarginGuardTrigger)
        label = "Margin ratio threshold" if self.trigger == "margin_ratio" else "Liquidation distance threshold"
        threshold = _percent_open(self, "threshold", self.threshold, label)
        one_of(self.action, "action", "Action", MarginGuardAction)
        if self.action == "reduce":
            if self.reduce_percent is None:
                raise SpecError("reduce_percent", "Reduce percent is required for the reduce action.")
            _percent_open(self, "reduce_percent", self.reduce_percent, "Reduce percent")
        else:
            _unused("reduce_percent", self.reduce_percent, "Reduce percent", "with the reduce action")
        if self.action == "add_margin":
            self._validate_add_margin(threshold)
        else:
            when = "with the add_margin action"
            _unused("add_margin_mode", self.add_margin_mode, "Add-margin mode", when)
            _unused("add_margin_amount", self.add_margin_amount, "Add-margin amount", when)
            _unused("target_distance", self.target_distance, "Target distance", when)
            _unused("max_added_per_trade", self.max_added_per_trade, "Maximum added per trade", when)
        if _integer("cooldown_seconds", self.cooldown_seconds, "Cooldown") < 0:
            raise SpecError("cooldown_seconds", "Cooldown must be 0 seconds or more.")
        _trade_ids(self, self.trade_ids)

    def _validate_add_margin(self, threshold: Decimal) -> None:
        one_of(self.add_margin_mode, "add_margin_mode", "Add-margin mode", AddMarginMode)
        if self.add_margin_mode == "fixed":
            if self.add_margin_amount is None:
                raise SpecError("add_margin_amount", "Add-margin amount (sats) is required for a fixed addition.")
            if _integer("add_margin_amount", self.add_margin_amount, "Add-margin amount") < 1:
                raise SpecError("add_margin_amount", "Add-margin amount must be at least 1 sat.")
            _unused("target_distance", self.target_distance, "Target distance", "with restore_distance")
        else:
            _unused("add_margin_amount", self.add_margin_amount, "Add-margin amount", "with a fixed addition")
            if self.target_distance is None:
                raise SpecError("target_distance", "Target distance (%) is required to restore a distance.")
            target = _percent_open(self, "target_distance", self.target_distance, "Target distance")
            if self.trigger == "liquidation_distance" and target <= threshold:
                raise SpecError(
                    "target_distance",
                    f"Target distance ({target} %) must be greater than the trigger threshold ({threshold} %).",
                )
        if self.max_added_per_trade is not None and (
            _integer("max_added_per_trade", self.max_added_per_trade, "Maximum added per trade") < 1
        ):
            raise SpecError("max_added_per_trade", "Maximum added per trade must be at least 1 sat (or empty).")


_ADD_MARGIN = ("action", ("add_margin",))

RULES: tuple[FieldRule, ...] = (
    FieldRule("trigger", "choice", required=True),
    _pct_rule("threshold", required=True),
    FieldRule("action", "choice", required=True),
    _pct_rule("reduce_percent", required=True, when=(("action", ("reduce",)),)),
    FieldRule("add_margin_mode", "choice", required=True, when=(_ADD_MARGIN,)),
    FieldRule(
        "add_margin_amount",
        "sats",
        required=True,
        minimum=Decimal(1),
        when=(_ADD_MARGIN, ("add_margin_mode", ("fixed",))),
    ),
    _pct_rule("target_distance", required=True, when=(_ADD_MARGIN, ("add_margin_mode", ("restore_distance",)))),
    FieldRule("max_added_per_trade", "sats", minimum=Decimal(1), when=(_ADD_MARGIN,)),
    FieldRule("cooldown_seconds", "seconds", required=True, minimum=ZERO),
    FieldRule("trade_ids", "ids"),
)


# --- Margin Guard ----------------------------------------------------------------------------------------------------


def _evaluate_margin_guard(
    ctx: Context, config: MarginGuardConfig, account: AccountState, memory: Memory
) -> Evaluation:
    writer = TradesWriter(memory.trades)
    decisions: list[Decision] = []
    cooldown = timedelta(seconds=config.cooldown_seconds)
    balance_left = account.balance - _pending_additions(ctx, config, account, memory, cooldown)
    for trade in account.trades:
        if not in_scope(trade, config.trade_ids):
            continue
        before = writer.get(trade.id)
        decision, after, spent = _guard_trade(ctx, config, trade, before, balance_left, cooldown)
        if after is not before:
            writer.put(trade.id, after)
        if decision is not None:
            decisions.append(decision)
            balance_left -= spent
    writer.prune(account, ctx.now)
    return Evaluation(tuple(decisions), writer.memory(memory), False)


def _pending_additions(
    ctx: Context, config: MarginGuardConfig, account: AccountState, memory: Memory, cooldown: timedelta
) -> int:
    """Sats of additions still in their cooldown: the account state may not show them yet, so hold them back."""
    if config.action != "add_margin" or not memory.trades:
        return 0
    total = 0
    for trade in account.trades:
        trade_memory = memory.trades.get(trade.id)
        if (
            trade_memory is not None
            and trade_memory.pending_margin
            and trade_memory.last_action_at is not None
            and not cooled(ctx.now - trade_memory.last_action_at, cooldown)
        ):
            total += trade_memory.pending_margin
    return total


def _guard_trade(
    ctx: Context,
    config: MarginGuardConfig,
    trade: TradeState,
    memory: TradeMemory,
    balance_left: int,
    cooldown: timedelta,
) -> tuple[Decision | None, TradeMemory, int]:
    """One trade under the Margin Guard: (decision or None, new trade memory, sats of balance it uses)."""
    market = ctx.market
    long = trade.side == "buy"
    bid, ask = market.quote_for(trade.quantity)
    last = market.last_price
    mark = min(last, bid) if long else max(last, ask)
    if config.trigger == "margin_ratio":
        value = margin_ratio(
            trade.maintenance_margin, trade.margin, pnl(trade.side, trade.quantity, trade.entry_price, mark)
        )
        triggered = value >= config.threshold
    else:
        value = signed_distance(long, mark, trade.liquidation)
        triggered = value <= config.threshold
    if not triggered:
        if memory.crossed or memory.skip is not None:
            return None, replace(memory, crossed=False, skip=None), 0
        return None, memory, 0
    if memory.last_action_at is not None and not cooled(ctx.now - memory.last_action_at, cooldown):
        # Once per crossing: wait for the result of the last action and the cooldown.
        return None, (memory if memory.crossed else replace(memory, crossed=True)), 0
    if not memory.crossed:
        memory = replace(memory, crossed=True)

    def inputs() -> dict[str, str]:
        pl = pnl(trade.side, trade.quantity, trade.entry_price, mark)
        data = ctx.market_inputs()
        data.update(
            {
                "trigger": config.trigger,
                "threshold": str(config.threshold),
                "mark": str(mark),
                "mark_rule": "min(last, bucket bid)" if long else "max(last, bucket ask)",
                "bid": str(bid),
                "ask": str(ask),
                "side": trade.side,
                "quantity": str(trade.quantity),
                "entry_price": str(trade.entry_price),
                "liquidation": str(trade.liquidation),
                "margin": str(trade.margin),
                "maintenance_margin": str(trade.maintenance_margin),
                "pnl_sats": str(pl),
                "margin_ratio": fmt(margin_ratio(trade.maintenance_margin, trade.margin, pl)),
                "distance": fmt(signed_distance(long, mark, trade.liquidation)),
            }
        )
        return data

    what = "Margin ratio" if config.trigger == "margin_ratio" else "Distance to liquidation"
    relation = "≥" if config.trigger == "margin_ratio" else "≤"
    why = f"{what} {fmt(value)} % {relation} {config.threshold} %"
    acted = replace(memory, last_action_at=ctx.now, skip=None)
    if config.action == "close":
        return ClosePosition(trade.id, f"{why}: closing the trade.", inputs=inputs()), acted, 0
    if config.action == "reduce":
        return _reduce(ctx, config, trade, why, inputs), acted, 0
    return _add_margin(ctx, config, trade, memory, mark, why, balance_left, inputs)


def _reduce(
    ctx: Context, config: MarginGuardConfig, trade: TradeState, why: str, inputs: Callable[[], dict[str, str]]
) -> Decision:
    """Close and reopen the rest (close_quantity rounds up); a rest under 1 USD makes it a full close."""
    assert config.reduce_percent is not None  # guaranteed by MarginGuardConfig validation
    close_quantity = int((Decimal(trade.quantity) * config.reduce_percent / HUNDRED).to_integral_value(ROUND_CEILING))
    reopen_quantity = trade.quantity - close_quantity
    data = inputs()
    data["reduce_percent"] = str(config.reduce_percent)
    if reopen_quantity < 1:
        reason = f"{why}: reducing by {config.reduce_percent} % leaves less than 1 USD, closing the whole trade."
        return ClosePosition(trade.id, reason, inputs=data)
    leverage = min(max(trade.leverage, ONE), MAX_LEVERAGE)
    bid, ask = ctx.market.quote_for(reopen_quantity)
    fill = ask if trade.side == "buy" else bid
    liquidation = initial_liquidation_price(trade.side, reopen_quantity, fill, leverage)
    stoploss, takeprofit = _reopen_exits(trade, fill, liquidation, bid, ask, data)
    reason = (
        f"{why}: reducing by {config.reduce_percent} % (close the {trade.quantity} USD trade, "
        f"reopen {reopen_quantity} USD at market with the same side, leverage, SL and TP)."
    )
    return ReducePosition(
        trade.id, close_quantity, reopen_quantity, trade.side, leverage, stoploss, takeprofit, reason, inputs=data
    )


def _reopen_exits(
    trade: TradeState, fill: Decimal, liquidation: Decimal, bid: Decimal, ask: Decimal, data: dict[str, str]
) -> tuple[Decimal | None, Decimal | None]:
    """The old SL/TP if the reopened trade would be allowed them, else None (noted in ``data``)."""
    data["reopen_estimated_fill"] = str(fill)
    data["reopen_estimated_liquidation"] = str(liquidation)
    stoploss: Decimal | None = trade.stoploss or None
    takeprofit: Decimal | None = trade.takeprofit or None
    long = trade.side == "buy"
    if stoploss is not None and (
        not (liquidation <= stoploss < min(bid, fill)) if long else not (max(ask, fill) < stoploss <= liquidation)
    ):
        data["stoploss_dropped"] = f"{stoploss} would be refused for the reopened trade"
        stoploss = None
    if takeprofit is not None and (not takeprofit > max(ask, fill) if long else not takeprofit < min(bid, fill)):
        data["takeprofit_dropped"] = f"{takeprofit} would be refused for the reopened trade"
        takeprofit = None
    return stoploss, takeprofit


def margin_to_restore_distance(trade: TradeState, mark: Decimal, target_percent: Decimal) -> int | None:
    """Least sats to add so that the trade's liquidation (LN Markets' rounding) is ``target_percent`` % from ``mark``.

    Long: the liquidation must be ≤ R, the highest tick ≤ ``mark × (1 − t)``; short: ≥ R, the lowest tick ≥
    ``mark × (1 + t)``. With ``b = M / SATS / q`` that is ``M ≥ SATS·q·(1/R − 1/entry)`` (long) or
    ``M ≥ SATS·q·(1/entry − 1/R)`` (short), rounded up. Returns 0 when the current margin already suffices, None when
    no finite margin can (a long target at or under 0).
    """
    long = trade.side == "buy"
    with localcontext() as ctx:
        ctx.prec = 40
        t = target_percent / HUNDRED
        goal = round_to_tick(mark * (ONE - t), ROUND_FLOOR) if long else round_to_tick(mark * (ONE + t), ROUND_CEILING)
        if goal <= 0:
            return None
        scale = Decimal(trade.quantity) * SATS
        needed = (
            scale * (ONE / goal - ONE / trade.entry_price) if long else scale * (ONE / trade.entry_price - ONE / goal)
        )
        total = int(needed.to_integral_value(ROUND_CEILING))
    extra = total - trade.margin
    if extra <= 0:
        return 0
    # Guard against a rounding surprise in the liquidation formula: nudge up until the rounded price satisfies R.
    for _step in range(20):
        liquidation = liquidation_price(trade.side, trade.quantity, trade.entry_price, trade.margin + extra)
        if (liquidation <= goal) if long else (liquidation >= goal):
            return extra
        extra += max(1, extra // 1000)
    return extra


def _add_margin(
    ctx: Context,
    config: MarginGuardConfig,
    trade: TradeState,
    memory: TradeMemory,
    mark: Decimal,
    why: str,
    balance_left: int,
    inputs: Callable[[], dict[str, str]],
) -> tuple[Decision | None, TradeMemory, int]:
    """Fixed or restore-distance addition, limited by balance, cap and leverage ≥ 1; Skip when nothing fits."""
    wanted: int | None
    if config.add_margin_mode == "fixed":
        assert config.add_margin_amount is not None  # guaranteed by MarginGuardConfig validation
        wanted = config.add_margin_amount
    else:
        assert config.target_distance is not None  # guaranteed by MarginGuardConfig validation
        wanted = margin_to_restore_distance(trade, mark, config.target_distance)
        if wanted == 0:
            problem = ("at_target", f"{why}, but the distance is already at the {config.target_distance} % target.")
            decision, after = skip_once(memory, problem, trade.id, inputs)
            return decision, after, 0
    # Leverage may not fall below 1 (docs/protocol.md §9.6): margin ≤ quantity × SATS / entry price.
    room = int(Decimal(trade.quantity * SATS) / trade.entry_price) - trade.margin
    # "wanted" first so that a tie is reported as not limited.
    limits: dict[str, int] = {} if wanted is None else {"wanted": wanted}
    limits["free balance"] = balance_left
    limits["leverage ≥ 1"] = room
    if config.max_added_per_trade is not None:
        limits["per-trade cap"] = config.max_added_per_trade - memory.added_margin
    binding = min(limits, key=lambda name: limits[name])
    amount = limits[binding]
    if amount < 1:
        problem = _add_margin_problem(limits, why)
        decision, after = skip_once(memory, problem, trade.id, inputs)
        return decision, after, 0
    data = inputs()
    data.update(
        {
            "add_margin_mode": str(config.add_margin_mode),
            "wanted_sats": "unbounded" if wanted is None else str(wanted),
            "already_added_sats": str(memory.added_margin),
            "free_balance_left": str(balance_left),
            "limited_by": "nothing" if binding == "wanted" else binding,
        }
    )
    if config.target_distance is not None:
        data["target_distance"] = str(config.target_distance)
    limited = "" if binding == "wanted" else f" (limited by the {binding})"
    reason = f"{why}: adding {amount} sats of margin{limited}."
    after = replace(
        memory, last_action_at=ctx.now, skip=None, added_margin=memory.added_margin + amount, pending_margin=amount
    )
    return AddMargin(trade.id, amount, reason, inputs=data), after, amount


def _add_margin_problem(limits: Mapping[str, int], why: str) -> Problem:
    if limits.get("per-trade cap", 1) < 1:
        return "cap_reached", f"{why}, but the per-trade cap of added margin is reached."
    if limits["leverage ≥ 1"] < 1:
        return "leverage_floor", f"{why}, but more margin would take the leverage below 1."
    return "insufficient_balance", f"{why}, but the free balance cannot cover any added margin."


# --- in words ----------------------------------------------------------------------------------------------------


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
        price = price_for_pnl(trade, target - trade.maintenance_margin - trade.margin)
        what = _("margin ratio")
    return TriggerNow(subject(trade), now_text(what, value, met, price), met, price, trade.id)


def _summary(config: MarginGuardConfig) -> str:
    return _("%(action)s %(trigger)s, on %(scope)s; then waits %(cooldown)s before acting on that trade again.") % {
        "action": _guard_action(config).capitalize(),
        "trigger": _guard_trigger(config),
        "scope": scope(config.trade_ids),
        "cooldown": seconds(config.cooldown_seconds),
    }


KIND = KindDef(
    key=MarginGuardConfig.kind,
    label=gettext_noop("Margin Guard"),
    description=gettext_noop(
        "Keeps running trades away from liquidation: closes, reduces, or adds margin when a trade gets too close."
    ),
    config_type=MarginGuardConfig,
    rules=RULES,
    evaluate=_evaluate_margin_guard,
    summary=_summary,
    triggers_now=per_trade(_guard_now),
    form_path="automations.forms.MarginGuardForm",
)
