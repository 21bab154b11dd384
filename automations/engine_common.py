"""What the kinds' evaluators share: the per-call context, copy-on-write trade memory, skips, LN Markets' SL/TP
rules and price helpers. Pure: no ORM, no network, no clock, no Django (``automations.engine`` says what each
kind decides; ``automations.kinds.<kind>`` holds each evaluator).
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
    pnl,
    round_to_tick,
)

from .decisions import (
    Decision,
    Skip,
)
from .specs import (
    EMPTY_TRADE_MEMORY,
    AccountState,
    AutomationSpec,
    MarketSnapshot,
    Memory,
    TradeMemory,
    TradeState,
)

MEMORY_RETENTION = timedelta(days=1)
ZERO_TIME = timedelta(0)
HUNDRED = Decimal(100)
ONE = Decimal(1)
FOUR_PLACES = Decimal("0.0001")

# A skip problem: (stable code, plain-English reason).
Problem = tuple[str, str]


class EngineError(Exception):
    """Raised by :func:`evaluate_safe` when evaluating an automation failed unexpectedly; the service records it."""

    def __init__(self, automation_id: int, message: str) -> None:
        super().__init__(f"automation {automation_id}: {message}")
        self.automation_id = automation_id


# --- small helpers ---------------------------------------------------------------------------------------------------


def fmt(value: Decimal) -> str:
    """A computed ratio for the audit log, to 4 decimals."""
    return str(value.quantize(FOUR_PLACES))


def cooled(elapsed: timedelta, cooldown: timedelta) -> bool:
    """True once ``cooldown`` has passed AND time moved on (so the same ``now`` never decides twice)."""
    return elapsed > ZERO_TIME and elapsed >= cooldown


def signed_distance(long: bool, mark: Decimal, liquidation: Decimal) -> Decimal:
    """Distance to liquidation in percent, negative once the mark is past the liquidation price."""
    gap = mark - liquidation if long else liquidation - mark
    return gap * HUNDRED / mark


def rule_quote(market: MarketSnapshot, bid: Decimal, ask: Decimal) -> tuple[Decimal, Decimal]:
    """The stricter of the bucket quote and the top-level quote, for LN Markets' SL/TP side rules."""
    return min(bid, market.bid), max(ask, market.ask)


class Context:
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


class TradesWriter:
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


def in_scope(trade: TradeState, trade_ids: tuple[str, ...]) -> bool:
    """Managed trades only (never one Axisor did not open without consent), and the chosen ones if any."""
    return trade.managed and (not trade_ids or trade.id in trade_ids)


def skip_once(
    memory: TradeMemory, problem: Problem, trade_id: str, inputs: Callable[[], dict[str, str]]
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
        return round_to_tick(fill * (HUNDRED - percent) / HUNDRED, ROUND_FLOOR)
    return round_to_tick(fill * (HUNDRED + percent) / HUNDRED, ROUND_CEILING)


def takeprofit_from_percent(side: Side, fill: Decimal, percent: Decimal) -> Decimal:
    """A take-profit ``percent`` % away from ``fill``, on the tick and strictly on the winning side.

    Long: ``fill × (1 + p/100)`` rounded up; short: ``fill × (1 − p/100)`` rounded down.
    """
    if side == "buy":
        return round_to_tick(fill * (HUNDRED + percent) / HUNDRED, ROUND_CEILING)
    return round_to_tick(fill * (HUNDRED - percent) / HUNDRED, ROUND_FLOOR)


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
        inverse = ONE / entry - per_contract if long else ONE / entry + per_contract
        if inverse <= 0:
            return None
        raw = ONE / inverse
    price = round_to_tick(raw, ROUND_CEILING if long else ROUND_FLOOR)
    step = TICK if long else -TICK
    for _ in range(50):
        if price <= 0:
            return None
        if pnl(trade.side, quantity, entry, price) >= opening + fee(quantity, price):
            return price
        price += step
    return None


def check_stoploss(trade: TradeState, price: Decimal, bid: Decimal, ask: Decimal) -> Problem | None:
    """LN Markets' rules for a new stop-loss on a running trade (docs/protocol.md §9.7); None when acceptable.

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


def check_takeprofit(trade: TradeState, price: Decimal, bid: Decimal, ask: Decimal) -> Problem | None:
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
