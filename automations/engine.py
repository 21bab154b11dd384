"""The pure decision engine of the three automations (product.md "The three automations, precisely").

``evaluate(spec, market, account, now) -> Evaluation`` looks at one automation, the latest market snapshot and the
exchange account, and returns the decisions to take plus the automation's updated memory. It has no ORM, no network,
no clock (``now`` is passed in) and no Django import; ``evaluate_safe`` wraps it for the service layer (style guide
rec. 2). The input and output types live in ``automations.specs`` and ``automations.decisions`` and are re-exported
here, so ``from automations.engine import ...`` is the one import the rest of the project needs.

Semantics that the service layer relies on (each one is tested in ``tests/automations``):

Prices
  * TP/SL marks a trade at the bid of its size bucket for a long and the ask for a short (``market.quote_for``).
  * Margin Guard marks at the worse of the last price and that quote: long ``min(last, bid)``, short
    ``max(last, ask)``, so a guard never waits for the better of two prices (lnmarkets-v3.md §9.4).
  * Distance to liquidation is *signed*: long ``(mark − liq) / mark``, short ``(liq − mark) / mark``, in percent; a
    trade already past its liquidation price has a negative distance and is always triggered.
  * SL/TP rules are checked against the stricter of the bucket quote and the top-level quote.
  * Staleness: a snapshot is stale when ``now − market.time > max_price_age_seconds`` (exactly at the limit is
    fresh). Entries are never made on a stale price (``Skip``); protective kinds act anyway and record the age in
    ``inputs["price_age_s"]`` / ``inputs["stale"]``.

Margin Guard
  * Triggered when margin ratio ≥ X or distance ≤ Y, both inclusive.
  * Once per crossing, with a cooldown: after an action on a trade the guard proposes nothing more for that trade
    until ``cooldown_seconds`` have passed since the action AND time has actually moved on (``now`` strictly later:
    a zero cooldown still never decides twice at the same ``now``). After that, if the trade is still triggered, it
    acts again (a failed close is retried, a too-small addition is topped up within the cap).
  * reduce by P %: ``close_quantity = ceil(quantity × P / 100)`` (round toward safety: at least P % goes),
    ``reopen_quantity = quantity − close_quantity``; if that is < 1 USD the decision is a full ``ClosePosition``.
    The reopen keeps side and current leverage (clamped to 1..100); an SL/TP that the reopened trade would be refused
    (estimated fill and initial liquidation from the bucket quote) is dropped and reported in ``inputs``.
  * add_margin: fixed sats, or the least sats that bring the distance back to ``target_distance`` (the liquidation
    after the addition, with LN Markets' rounding, is at or beyond ``mark × (1 ∓ target)``; rounded up to whole
    sats). The amount is then limited by the free balance (shared across the trades of one evaluation), by
    ``max_added_per_trade − already added`` and by leverage ≥ 1 (``margin ≤ quantity × SATS / entry``). A partial
    amount is still proposed (``inputs["limited_by"]``); nothing left → ``Skip``. Memory counts the proposed amount
    at once (conservative: a failed addition still uses the cap), and holds the last addition of each trade back
    from the free balance while that trade is in its cooldown (the account state may not show it yet).

TP/SL
  * PnL % = pnl(sats, at the mark) / margin × 100; profit fires at ≥ +X, loss at ≤ −X (signed, never ``abs``).
  * Fires once per trade: when an action is proposed (or the trade already has exactly the requested value), the
    trade is marked ``fired``. When the action is refused by the rules (wrong side, crosses liquidation…), a ``Skip``
    is emitted and the trigger stays pending: it is tried again on the next evaluations while the trigger holds.
  * set_stoploss / set_takeprofit propose the configured price as is, after checking the rules; break-even and
    trailing only ever tighten a stop-loss.
  * Break-even (see :func:`breakeven_stoploss`): the stop where closing covers the opening fee plus a Tier-1 closing
    fee, rounded to the tick away from the entry (up for a long, down for a short).
  * Trailing: from the trigger on, track the best mark (highest bid for a long, lowest ask for a short); the stop is
    ``best − distance`` rounded down (long) / ``best + distance`` rounded up (short) and is proposed only when it
    tightens both the exchange's current stop and the last one proposed by at least one tick.

Auto Entry
  * ``immediate``, ``price_below`` (last ≤ P) or ``price_above`` (last ≥ P), on the ticker's last price.
  * Blocked, with a ``Skip``, by the kill switch, the account's failure breaker, a stale price, a size outside
    1..500 000 USD, a free balance below margin + Tier-1 opening and closing fee reserves, or an SL/TP the order would
    be refused for (checked against the estimated fill and initial liquidation).
  * After a fire: ``completed`` once ``1 + repeat_count`` fires are used. Otherwise it re-arms when
    ``repeat_cooldown_seconds`` have passed since the last fire (and ``now`` moved on) AND, for price triggers, a
    fresh price has been seen outside the trigger zone since that fire (the price left and came back). Stale prices
    never re-arm.

Skips and memory
  * A ``Skip`` is emitted once per reason per crossing (``TradeMemory.skip`` / ``Memory.skip`` hold its code), so a
    lasting condition writes one audit entry, not one per tick; the code is cleared when the trigger clears or an
    action is proposed.
  * The returned memory already includes the decisions; evaluating again with it at the same ``now`` decides
    nothing new. When nothing changed it is the very same object (``evaluation.memory is spec.memory``).
  * Memory of a trade no longer running is dropped once it holds no action or its last action is older than
    ``MEMORY_RETENTION`` (one day), so a momentarily incomplete trade list cannot reset caps or fired flags at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext

from lnmarkets.maths import (
    SATS,
    TICK,
    Side,
    fee,
    initial_liquidation_price,
    liquidation_price,
    margin_from_quantity,
    margin_ratio,
    pnl,
    quantity_from_margin,
    round_to_tick,
)

from .decisions import (
    AddMargin,
    ClosePosition,
    Decision,
    Evaluation,
    OpenPosition,
    ReducePosition,
    SetStopLoss,
    SetTakeProfit,
    Skip,
)
from .specs import (
    EMPTY_TRADE_MEMORY,
    MAX_LEVERAGE,
    MAX_QUANTITY,
    AccountState,
    AutoEntryConfig,
    AutomationSpec,
    Bucket,
    MarginGuardConfig,
    MarketSnapshot,
    Memory,
    SpecError,
    TpSlConfig,
    TradeMemory,
    TradeState,
)

MEMORY_RETENTION = timedelta(days=1)
_ZERO_TIME = timedelta(0)
_HUNDRED = Decimal(100)
_ONE = Decimal(1)
_FOUR_PLACES = Decimal("0.0001")

# A skip problem: (stable code, plain-English reason).
_Problem = tuple[str, str]


class EngineError(Exception):
    """Raised by :func:`evaluate_safe` when evaluating an automation failed unexpectedly; the service records it."""

    def __init__(self, automation_id: int, message: str) -> None:
        super().__init__(f"automation {automation_id}: {message}")
        self.automation_id = automation_id


# --- small helpers ---------------------------------------------------------------------------------------------------


def _fmt(value: Decimal) -> str:
    """A computed ratio for the audit log, to 4 decimals."""
    return str(value.quantize(_FOUR_PLACES))


def _cooled(elapsed: timedelta, cooldown: timedelta) -> bool:
    """True once ``cooldown`` has passed AND time moved on (so the same ``now`` never decides twice)."""
    return elapsed > _ZERO_TIME and elapsed >= cooldown


def _signed_distance(long: bool, mark: Decimal, liquidation: Decimal) -> Decimal:
    """Distance to liquidation in percent, negative once the mark is past the liquidation price."""
    gap = mark - liquidation if long else liquidation - mark
    return gap * _HUNDRED / mark


def _rule_quote(market: MarketSnapshot, bid: Decimal, ask: Decimal) -> tuple[Decimal, Decimal]:
    """The stricter of the bucket quote and the top-level quote, for LN Markets' SL/TP side rules."""
    return min(bid, market.bid), max(ask, market.ask)


class _Context:
    """Per-call values shared by the kind evaluators (computed once per ``evaluate``)."""

    __slots__ = ("age", "market", "now", "spec", "stale")

    def __init__(self, spec: AutomationSpec, market: MarketSnapshot, now: datetime) -> None:
        self.spec = spec
        self.market = market
        self.now = now
        self.age = now - market.time
        self.stale = self.age > timedelta(seconds=spec.max_price_age_seconds)

    def market_inputs(self) -> dict[str, str]:
        """The market part of a decision's ``inputs``."""
        market = self.market
        return {
            "last_price": str(market.last_price),
            "index": str(market.index),
            "top_bid": str(market.bid),
            "top_ask": str(market.ask),
            "price_time": market.time.isoformat(),
            "price_age_s": f"{self.age.total_seconds():.3f}",
            "max_price_age_s": str(self.spec.max_price_age_seconds),
            "stale": "true" if self.stale else "false",
        }


class _TradesWriter:
    """Copy-on-write view of ``Memory.trades``: the original mapping is never mutated."""

    __slots__ = ("base", "trades")

    def __init__(self, base: Mapping[str, TradeMemory]) -> None:
        self.base = base
        self.trades: dict[str, TradeMemory] | None = None

    def get(self, trade_id: str) -> TradeMemory:
        source = self.base if self.trades is None else self.trades
        return source.get(trade_id, EMPTY_TRADE_MEMORY)

    def put(self, trade_id: str, memory: TradeMemory) -> None:
        if self.trades is None:
            self.trades = dict(self.base)
        self.trades[trade_id] = memory

    def prune(self, account: AccountState, now: datetime) -> None:
        """Forget trades that are no longer running (see the module docstring for the retention rule)."""
        current = self.base if self.trades is None else self.trades
        if not current:
            return
        present = {trade.id for trade in account.trades}
        stale_ids = [
            trade_id
            for trade_id, memory in current.items()
            if trade_id not in present
            and (memory.last_action_at is None or now - memory.last_action_at > MEMORY_RETENTION)
        ]
        if stale_ids:
            if self.trades is None:
                self.trades = dict(self.base)
            for trade_id in stale_ids:
                del self.trades[trade_id]

    def memory(self, base: Memory) -> Memory:
        if self.trades is None:
            return base
        return Memory(
            trades=self.trades, fires=base.fires, last_fire_at=base.last_fire_at, armed=base.armed, skip=base.skip
        )


def _in_scope(trade: TradeState, trade_ids: tuple[str, ...]) -> bool:
    """Managed trades only (never one Axisor did not open without consent), and the chosen ones if any."""
    return trade.managed and (not trade_ids or trade.id in trade_ids)


def _skip_once(
    memory: TradeMemory, problem: _Problem, trade_id: str, inputs: Callable[[], dict[str, str]]
) -> tuple[Decision | None, TradeMemory]:
    """A Skip for ``problem`` unless the same reason was already reported in this crossing."""
    code, reason = problem
    if memory.skip == code:
        return None, memory
    return Skip(reason, trade_id=trade_id, code=code, inputs=inputs()), replace(memory, skip=code)


# --- public price helpers (also used by the service layer) -----------------------------------------------------------


def stoploss_from_percent(side: Side, fill: Decimal, percent: Decimal) -> Decimal:
    """A stop-loss ``percent`` % away from ``fill``, on the tick and strictly on the losing side.

    Long: ``fill × (1 − p/100)`` rounded down; short: ``fill × (1 + p/100)`` rounded up.
    """
    if side == "buy":
        return round_to_tick(fill * (_HUNDRED - percent) / _HUNDRED, ROUND_FLOOR)
    return round_to_tick(fill * (_HUNDRED + percent) / _HUNDRED, ROUND_CEILING)


def takeprofit_from_percent(side: Side, fill: Decimal, percent: Decimal) -> Decimal:
    """A take-profit ``percent`` % away from ``fill``, on the tick and strictly on the winning side.

    Long: ``fill × (1 + p/100)`` rounded up; short: ``fill × (1 − p/100)`` rounded down.
    """
    if side == "buy":
        return round_to_tick(fill * (_HUNDRED + percent) / _HUNDRED, ROUND_CEILING)
    return round_to_tick(fill * (_HUNDRED - percent) / _HUNDRED, ROUND_FLOOR)


def breakeven_stoploss(trade: TradeState) -> Decimal | None:
    """The break-even stop-loss of ``trade``: closing there covers the opening fee and the closing fee.

    Fees: the trade's ``opening_fee`` (or the Tier-1 fee at entry when it is 0/unknown) plus a Tier-1 closing fee
    (the highest rate, so the stop is on the safe side for every tier). Solving ``pnl(S) = fees`` for the inverse
    contract gives long ``S = 1 / (1/entry − fees/(q·SATS))``, short ``S = 1 / (1/entry + fees/(q·SATS))``. S is rounded
    to the tick away from the entry (up for a long, down for a short) and then nudged a tick at a time until
    ``pnl(S) ≥ opening_fee + fee(q, S)`` with the exact rounding of the maths module. None if no such price exists.
    """
    long = trade.side == "buy"
    quantity = trade.quantity
    entry = trade.entry_price
    opening = trade.opening_fee if trade.opening_fee > 0 else fee(quantity, entry)
    with localcontext() as ctx:
        ctx.prec = 40
        per_contract = Decimal(opening + fee(quantity, entry)) / (Decimal(quantity) * SATS)
        inverse = _ONE / entry - per_contract if long else _ONE / entry + per_contract
        if inverse <= 0:
            return None
        raw = _ONE / inverse
    price = round_to_tick(raw, ROUND_CEILING if long else ROUND_FLOOR)
    step = TICK if long else -TICK
    for _ in range(50):
        if price <= 0:
            return None
        if pnl(trade.side, quantity, entry, price) >= opening + fee(quantity, price):
            return price
        price += step
    return None


def check_stoploss(trade: TradeState, price: Decimal, bid: Decimal, ask: Decimal) -> _Problem | None:
    """LN Markets' rules for a new stop-loss on a running trade (lnmarkets-v3.md §9.7); None when acceptable.

    Long: on the tick, ``liquidation ≤ SL < bid``, ``SL < TP`` if a TP is set; short: ``ask < SL ≤ liquidation``,
    ``SL > TP`` if set. Never the current value ("same as the previous one" is rejected).
    """
    if price % TICK != 0:
        return "off_tick", f"Stop-loss {price} is not on the 0.5 USD tick."
    if price == trade.stoploss:
        return "unchanged", f"The stop-loss is already {price}."
    if trade.side == "buy":
        if price < trade.liquidation:
            return "crosses_liquidation", f"Stop-loss {price} would be below the liquidation price {trade.liquidation}."
        if price >= bid:
            return "wrong_side", f"Stop-loss {price} must be below the bid {bid}."
        if trade.takeprofit and price >= trade.takeprofit:
            return "crosses_takeprofit", f"Stop-loss {price} must be below the take-profit {trade.takeprofit}."
    else:
        if price > trade.liquidation:
            return "crosses_liquidation", f"Stop-loss {price} would be above the liquidation price {trade.liquidation}."
        if price <= ask:
            return "wrong_side", f"Stop-loss {price} must be above the ask {ask}."
        if trade.takeprofit and price <= trade.takeprofit:
            return "crosses_takeprofit", f"Stop-loss {price} must be above the take-profit {trade.takeprofit}."
    return None


def check_takeprofit(trade: TradeState, price: Decimal, bid: Decimal, ask: Decimal) -> _Problem | None:
    """LN Markets' rules for a new take-profit: on the tick, long ``TP > ask`` (and above a set SL), short
    ``TP < bid`` (and below a set SL), never the current value. None when acceptable.
    """
    if price % TICK != 0:
        return "off_tick", f"Take-profit {price} is not on the 0.5 USD tick."
    if price == trade.takeprofit:
        return "unchanged", f"The take-profit is already {price}."
    if trade.side == "buy":
        if price <= ask:
            return "wrong_side", f"Take-profit {price} must be above the ask {ask}."
        if trade.stoploss and price <= trade.stoploss:
            return "crosses_stoploss", f"Take-profit {price} must be above the stop-loss {trade.stoploss}."
    else:
        if price >= bid:
            return "wrong_side", f"Take-profit {price} must be below the bid {bid}."
        if trade.stoploss and price >= trade.stoploss:
            return "crosses_stoploss", f"Take-profit {price} must be below the stop-loss {trade.stoploss}."
    return None


# --- Margin Guard ----------------------------------------------------------------------------------------------------


def _evaluate_margin_guard(
    ctx: _Context, config: MarginGuardConfig, account: AccountState, memory: Memory
) -> Evaluation:
    writer = _TradesWriter(memory.trades)
    decisions: list[Decision] = []
    cooldown = timedelta(seconds=config.cooldown_seconds)
    balance_left = account.balance - _pending_additions(ctx, config, account, memory, cooldown)
    for trade in account.trades:
        if not _in_scope(trade, config.trade_ids):
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
    ctx: _Context, config: MarginGuardConfig, account: AccountState, memory: Memory, cooldown: timedelta
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
            and not _cooled(ctx.now - trade_memory.last_action_at, cooldown)
        ):
            total += trade_memory.pending_margin
    return total


def _guard_trade(
    ctx: _Context,
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
        value = _signed_distance(long, mark, trade.liquidation)
        triggered = value <= config.threshold
    if not triggered:
        if memory.crossed or memory.skip is not None:
            return None, replace(memory, crossed=False, skip=None), 0
        return None, memory, 0
    if memory.last_action_at is not None and not _cooled(ctx.now - memory.last_action_at, cooldown):
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
                "margin_ratio": _fmt(margin_ratio(trade.maintenance_margin, trade.margin, pl)),
                "distance": _fmt(_signed_distance(long, mark, trade.liquidation)),
            }
        )
        return data

    what = "Margin ratio" if config.trigger == "margin_ratio" else "Distance to liquidation"
    relation = "≥" if config.trigger == "margin_ratio" else "≤"
    why = f"{what} {_fmt(value)} % {relation} {config.threshold} %"
    acted = replace(memory, last_action_at=ctx.now, skip=None)
    if config.action == "close":
        return ClosePosition(trade.id, f"{why}: closing the trade.", inputs=inputs()), acted, 0
    if config.action == "reduce":
        return _reduce(ctx, config, trade, why, inputs), acted, 0
    return _add_margin(ctx, config, trade, memory, mark, why, balance_left, inputs)


def _reduce(
    ctx: _Context, config: MarginGuardConfig, trade: TradeState, why: str, inputs: Callable[[], dict[str, str]]
) -> Decision:
    """Close and reopen the rest (close_quantity rounds up); a rest under 1 USD makes it a full close."""
    assert config.reduce_percent is not None  # guaranteed by MarginGuardConfig validation
    close_quantity = int((Decimal(trade.quantity) * config.reduce_percent / _HUNDRED).to_integral_value(ROUND_CEILING))
    reopen_quantity = trade.quantity - close_quantity
    data = inputs()
    data["reduce_percent"] = str(config.reduce_percent)
    if reopen_quantity < 1:
        reason = f"{why}: reducing by {config.reduce_percent} % leaves less than 1 USD, closing the whole trade."
        return ClosePosition(trade.id, reason, inputs=data)
    leverage = min(max(trade.leverage, _ONE), MAX_LEVERAGE)
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
        t = target_percent / _HUNDRED
        goal = (
            round_to_tick(mark * (_ONE - t), ROUND_FLOOR) if long else round_to_tick(mark * (_ONE + t), ROUND_CEILING)
        )
        if goal <= 0:
            return None
        scale = Decimal(trade.quantity) * SATS
        needed = (
            scale * (_ONE / goal - _ONE / trade.entry_price)
            if long
            else scale * (_ONE / trade.entry_price - _ONE / goal)
        )
        total = int(needed.to_integral_value(ROUND_CEILING))
    extra = total - trade.margin
    if extra <= 0:
        return 0
    # Guard against a rounding surprise in the liquidation formula: nudge up until the rounded price satisfies R.
    for _ in range(20):
        liquidation = liquidation_price(trade.side, trade.quantity, trade.entry_price, trade.margin + extra)
        if (liquidation <= goal) if long else (liquidation >= goal):
            return extra
        extra += max(1, extra // 1000)
    return extra


def _add_margin(
    ctx: _Context,
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
            decision, after = _skip_once(memory, problem, trade.id, inputs)
            return decision, after, 0
    # Leverage may not fall below 1 (lnmarkets-v3.md §9.6): margin ≤ quantity × SATS / entry price.
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
        decision, after = _skip_once(memory, problem, trade.id, inputs)
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


def _add_margin_problem(limits: Mapping[str, int], why: str) -> _Problem:
    if limits.get("per-trade cap", 1) < 1:
        return "cap_reached", f"{why}, but the per-trade cap of added margin is reached."
    if limits["leverage ≥ 1"] < 1:
        return "leverage_floor", f"{why}, but more margin would take the leverage below 1."
    return "insufficient_balance", f"{why}, but the free balance cannot cover any added margin."


# --- TP/SL -----------------------------------------------------------------------------------------------------------


def _evaluate_tpsl(ctx: _Context, config: TpSlConfig, account: AccountState, memory: Memory) -> Evaluation:
    writer = _TradesWriter(memory.trades)
    decisions: list[Decision] = []
    threshold = config.trigger_percent if config.direction == "profit" else -config.trigger_percent
    for trade in account.trades:
        if not _in_scope(trade, config.trade_ids):
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
    ctx: _Context, config: TpSlConfig, trade: TradeState, memory: TradeMemory, threshold: Decimal
) -> tuple[Decision | None, TradeMemory]:
    """One trade under TP/SL management: (decision or None, new trade memory)."""
    if memory.fired and config.action != "trailing_stoploss":
        return None, memory  # fires once per trade; only a trailing stop keeps deciding
    market = ctx.market
    long = trade.side == "buy"
    bid, ask = market.quote_for(trade.quantity)
    mark = bid if long else ask
    rule_bid, rule_ask = _rule_quote(market, bid, ask)
    pl = pnl(trade.side, trade.quantity, trade.entry_price, mark)
    percent = Decimal(pl) * _HUNDRED / Decimal(trade.margin)

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
                "pnl_percent": _fmt(percent),
            }
        )
        return data

    if memory.fired:  # a trailing stop follows the best mark from its trigger on, whatever the PnL does
        return _trail(ctx, config, trade, memory, mark, rule_bid, rule_ask, inputs, first=False)
    triggered = percent >= threshold if config.direction == "profit" else percent <= threshold
    if not triggered:
        return None, (memory if memory.skip is None else replace(memory, skip=None))
    sign = "≥ +" if config.direction == "profit" else "≤ −"
    why = f"PnL {_fmt(percent)} % {sign}{config.trigger_percent} %"
    action = config.action
    if action == "close":
        return ClosePosition(trade.id, f"{why}: closing the trade.", inputs=inputs()), _fire(ctx, memory)
    if action == "trailing_stoploss":
        return _trail(ctx, config, trade, memory, mark, rule_bid, rule_ask, inputs, first=True)
    decision: Decision
    problem: _Problem | None
    if action == "set_takeprofit":
        assert config.price is not None  # guaranteed by TpSlConfig validation
        problem = check_takeprofit(trade, config.price, rule_bid, rule_ask)
        decision = SetTakeProfit(trade.id, config.price, f"{why}: take-profit to {config.price}.", inputs=inputs())
    else:
        price = config.price if action == "set_stoploss" else breakeven_stoploss(trade)
        if price is None:
            return _skip_once(memory, ("no_breakeven", f"{why}, but no break-even price exists."), trade.id, inputs)
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
        skip, _ = _skip_once(memory, (code, f"{why}; nothing to do: {text}"), trade.id, inputs)
        return skip, replace(_fire(ctx, memory), skip=code)
    return _skip_once(memory, (code, f"{why}; not sent: {text}"), trade.id, inputs)


def _fire(ctx: _Context, memory: TradeMemory) -> TradeMemory:
    """TP/SL memory once its trigger has been acted on for this trade."""
    return replace(memory, fired=True, last_action_at=ctx.now, skip=None)


def _trail(
    ctx: _Context,
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
                return _skip_once(memory, problem, trade.id, inputs)
            return None, memory
    problem_ = check_stoploss(trade, candidate, rule_bid, rule_ask)
    if problem_ is not None:
        return _skip_once(memory, (problem_[0], f"Trailing stop-loss not moved: {problem_[1]}"), trade.id, inputs)
    data = inputs()
    data.update({"trail_best": str(best), "trailing_distance": str(config.trailing_distance)})
    start = "started" if first else "moved"
    reason = f"Trailing stop-loss {start}: best mark {best} − distance gives {candidate}."
    if not long:
        reason = f"Trailing stop-loss {start}: best mark {best} + distance gives {candidate}."
    memory = replace(memory, trail_stoploss=candidate, last_action_at=ctx.now, skip=None)
    return SetStopLoss(trade.id, candidate, reason, inputs=data), memory


# --- Auto Entry ------------------------------------------------------------------------------------------------------


def _evaluate_auto_entry(ctx: _Context, config: AutoEntryConfig, account: AccountState, memory: Memory) -> Evaluation:
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
    cooled = memory.last_fire_at is None or _cooled(
        ctx.now - memory.last_fire_at, timedelta(seconds=config.repeat_cooldown_seconds)
    )
    decisions: tuple[Decision, ...] = ()
    fires, last_fire_at = memory.fires, memory.last_fire_at
    if in_zone and ready and cooled:
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


def _entry_decision(ctx: _Context, config: AutoEntryConfig, account: AccountState) -> tuple[Decision, str | None]:
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
    problem: _Problem | None = None
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
) -> _Problem | None:
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


# --- entry points ----------------------------------------------------------------------------------------------------


def evaluate(spec: AutomationSpec, market: MarketSnapshot, account: AccountState, now: datetime) -> Evaluation:
    """Decide what ``spec`` should do now, given the latest ``market`` snapshot and the exchange ``account``.

    Pure and deterministic: no I/O, no clock. ``now`` must be timezone-aware. Returns the decisions (protective ones
    and Skips included, for the audit log), the updated memory (persist it before executing the decisions), and
    ``completed`` (Auto Entry only). Idempotent: calling again with the returned memory at the same ``now`` decides
    nothing new. Raises ``SpecError`` for a naive ``now``; any other exception is a bug (use :func:`evaluate_safe`).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise SpecError("now", "now must be a timezone-aware datetime.")
    ctx = _Context(spec, market, now)
    config = spec.config
    if isinstance(config, MarginGuardConfig):
        return _evaluate_margin_guard(ctx, config, account, spec.memory)
    if isinstance(config, TpSlConfig):
        return _evaluate_tpsl(ctx, config, account, spec.memory)
    return _evaluate_auto_entry(ctx, config, account, spec.memory)


def evaluate_safe(spec: AutomationSpec, market: MarketSnapshot, account: AccountState, now: datetime) -> Evaluation:
    """:func:`evaluate`, with any exception turned into :class:`EngineError` (chained) for the service to record."""
    try:
        return evaluate(spec, market, account, now)
    except Exception as exc:
        raise EngineError(spec.id, f"{type(exc).__name__}: {exc}") from exc


__all__ = [
    "MEMORY_RETENTION",
    "AccountState",
    "AddMargin",
    "AutoEntryConfig",
    "AutomationSpec",
    "Bucket",
    "ClosePosition",
    "Decision",
    "EngineError",
    "Evaluation",
    "MarginGuardConfig",
    "MarketSnapshot",
    "Memory",
    "OpenPosition",
    "ReducePosition",
    "SetStopLoss",
    "SetTakeProfit",
    "Skip",
    "SpecError",
    "TpSlConfig",
    "TradeMemory",
    "TradeState",
    "breakeven_stoploss",
    "check_stoploss",
    "check_takeprofit",
    "evaluate",
    "evaluate_safe",
    "margin_to_restore_distance",
    "stoploss_from_percent",
    "takeprofit_from_percent",
]
