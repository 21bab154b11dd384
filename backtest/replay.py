"""The replay: one automation (or none, for the baseline) over a price history, under LN Markets' rules.

Pure: no ORM, no clock, no network. Decisions come from the live engine's public entry point
(``automations.engine.evaluate_safe``, as live), called with the same typed inputs the live service builds;
everything the exchange does is modelled here with ``lnmarkets.maths`` and mirrors the local simulator
(``lnmarkets.simulator``), which is the reference for the rules (see docs/backtest.md):

* the path: each candle is four ticks, open → the extreme that hurts the portfolio first → the other extreme →
  close, at 0, ¼, ½ and ¾ of the candle; a tick history is walked as it is. The price holds between ticks;
* quotes: the size-bucket ladder around the last price (bid = last − k × 0.5, ask = last + k × 0.5 per bucket);
* exchange triggers on every tick, take-profit then stop-loss then liquidation, on the worse of the last price and
  the trade's bucket quote, exits at the level (a liquidation loses the whole margin);
* funding at 00:00, 08:00 and 16:00 UTC at the chosen rate, at the first tick at or after each time;
* fees: Tier-1 reserves at order, the chosen tier's rate charged at open and close;
* an order decided at a tick lands ``latency_ms`` later, at the price then, after whatever the exchange did in
  between (a trade with an order in flight is not shown to the engine, as live does).

The fast path (``fast=True``) skips every tick at which provably nothing can happen (docs/backtest.md, "The fast
path"): the price band around the current price where no exchange trigger fires and the engine is silent, found by
asking the engine itself at a few prices, valid until the next time-dependent event. ``fast=False`` evaluates the
engine at every tick; the tests check that both give the same result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from automations.decision_facts import decision_facts
from automations.engine import (
    MEMORY_RETENTION,
    AccountState,
    AddMargin,
    AutoEntryConfig,
    AutomationSpec,
    Bucket,
    ClosePosition,
    Decision,
    Evaluation,
    MarketSnapshot,
    Memory,
    OpenPosition,
    ReducePosition,
    SetStopLoss,
    SetTakeProfit,
    Skip,
    TradeState,
    evaluate_safe,
    stoploss_from_percent,
    takeprofit_from_percent,
)
from automations.specs import AutomationConfig, AutomationKind
from backtest.history import History, price_of, to_half_ticks
from lnmarkets.maths import (
    TIER1_FEE_RATE,
    Side,
    fee,
    fee_reserves,
    funding_fee,
    initial_liquidation_price,
    leverage_of,
    liquidation_price,
    margin_from_quantity,
    pnl,
    quantity_from_margin,
)
from lnmarkets.simulator.trades import quantize_leverage

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FAR = 1 << 62
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MAX_QUANTITY = 500_000
MAX_ROWS_PER_KIND = 5000  # actions kept in the report per kind; counts stay exact

DEFAULT_BUCKETS: tuple[tuple[int, int, int], ...] = (
    (1, 10_000, 0),
    (10_001, 100_000, 1),
    (100_001, 250_000, 3),
    (250_001, 500_000, 6),
)


def _dt(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


def _ms(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


class ReplayError(ValueError):
    """Inputs the replay cannot run on (a message fit for a user)."""


# --- inputs ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TradeSpec:
    """A trade to guard. Without ``margin`` it is opened at the start of the history (at ``entry_price``, or the
    first price's bucket quote), paying its opening fee; with ``margin``, ``liquidation`` and
    ``maintenance_margin`` it is an already running trade taken as it is."""

    id: str
    side: Side
    quantity: int
    leverage: Decimal
    entry_price: Decimal | None = None
    stoploss: Decimal = Decimal(0)
    takeprofit: Decimal = Decimal(0)
    margin: int | None = None
    liquidation: Decimal | None = None
    maintenance_margin: int | None = None
    opening_fee: int = 0


@dataclass(frozen=True, slots=True)
class Rules:
    """The exchange rules of a replay: funding rate per 8 h, fee rate of the account's tier, order latency, ladder."""

    funding_rate: Decimal = Decimal("0.0001")
    funding_hours: tuple[int, ...] = (0, 8, 16)
    fee_rate: Decimal = TIER1_FEE_RATE
    latency_ms: int = 1000
    buckets: tuple[tuple[int, int, int], ...] = DEFAULT_BUCKETS  # (min size, max size, half spread in 0.5 ticks)


@dataclass(frozen=True, slots=True)
class Portfolio:
    balance: int
    trades: tuple[TradeSpec, ...]


@dataclass(frozen=True, slots=True)
class Candidate:
    """One configuration to replay: the engine kind and config, a label for the report."""

    label: str
    kind: AutomationKind
    config: AutomationConfig


# --- outputs ---------------------------------------------------------------------------------------------------------

Source = Literal["automation", "exchange"]


@dataclass(frozen=True, slots=True)
class Action:
    """One row of the report: an automation's decision (with what became of it) or an exchange event."""

    time_ms: int
    price: Decimal  # the last price when it happened
    source: Source
    kind: str  # close, reduce, add_margin, set_stoploss, set_takeprofit, open, skip; liquidation, stoploss, …
    trade_id: str
    value: str  # amount in sats, a price, a quantity…: what the row is about, as text
    reason: str
    outcome: str  # "done", "skipped", or "rejected: why"
    fill: Decimal | None = None  # the price the order landed at (automation rows), the exit level (exchange rows)
    facts: dict[str, Any] | None = None  # an automation row's decision facts (automations.decision_facts)

    def as_json(self) -> dict[str, Any]:
        return {
            "facts": self.facts,
            "time_ms": self.time_ms,
            "price": str(self.price),
            "source": self.source,
            "kind": self.kind,
            "trade_id": self.trade_id,
            "value": self.value,
            "reason": self.reason,
            "outcome": self.outcome,
            "fill": None if self.fill is None else str(self.fill),
        }


@dataclass(slots=True)
class Outcome:
    """What became of one trade lineage (a trade and the trades a reduce reopened from it)."""

    lineage: str
    closed_by: str = "still open"  # automation, stoploss, takeprofit, liquidation, still open
    time_ms: int | None = None


@dataclass(slots=True)
class ReplayResult:
    label: str
    kind: str
    start_equity: int = 0
    end_equity: int = 0
    final_balance: int = 0
    fees: int = 0
    funding: int = 0  # net paid (positive) or received (negative)
    margin_added: int = 0
    liquidations: int = 0
    actions: list[Action] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    liquidation_levels: dict[str, list[tuple[int, float | None]]] = field(default_factory=dict)
    engine_calls: int = 0
    ticks: int = 0

    @property
    def pnl(self) -> int:
        return self.end_equity - self.start_equity

    def liquidated_lineages(self) -> set[str]:
        return {o.lineage for o in self.outcomes.values() if o.closed_by == "liquidation"}


# --- the replayed exchange -------------------------------------------------------------------------------------------


class _Trade:
    """A running trade of the replayed account (mutable), with its prices also in half-ticks for quick checks."""

    __slots__ = (
        "entry",
        "half_spread",
        "id",
        "leverage",
        "lineage",
        "liq_ht",
        "liquidation",
        "long",
        "maintenance",
        "margin",
        "opening_fee",
        "quantity",
        "side",
        "sl_ht",
        "state",
        "stoploss",
        "takeprofit",
        "tp_ht",
    )

    def __init__(
        self,
        trade_id: str,
        lineage: str,
        side: Side,
        quantity: int,
        entry: Decimal,
        margin: int,
        leverage: Decimal,
        liquidation: Decimal,
        maintenance: int,
        opening_fee: int,
        half_spread: int,
    ) -> None:
        self.id = trade_id
        self.lineage = lineage
        self.side: Side = side
        self.long = side == "buy"
        self.quantity = quantity
        self.entry = entry
        self.margin = margin
        self.leverage = leverage
        self.maintenance = maintenance
        self.opening_fee = opening_fee
        self.half_spread = half_spread
        self.stoploss = Decimal(0)
        self.takeprofit = Decimal(0)
        self.sl_ht = 0
        self.tp_ht = 0
        self.liquidation = liquidation
        self.liq_ht = to_half_ticks(liquidation)
        self.state: TradeState | None = None

    def set_liquidation(self, value: Decimal) -> None:
        self.liquidation = value
        self.liq_ht = to_half_ticks(value)
        self.state = None

    def set_stoploss(self, value: Decimal) -> None:
        self.stoploss = value
        self.sl_ht = to_half_ticks(value)
        self.state = None

    def set_takeprofit(self, value: Decimal) -> None:
        self.takeprofit = value
        self.tp_ht = to_half_ticks(value)
        self.state = None

    def engine_state(self) -> TradeState:
        if self.state is None:
            self.state = TradeState(
                id=self.id,
                side=self.side,
                quantity=self.quantity,
                entry_price=self.entry,
                margin=max(self.margin, 1),
                leverage=self.leverage,
                liquidation=self.liquidation,
                stoploss=self.stoploss,
                takeprofit=self.takeprofit,
                maintenance_margin=self.maintenance,
                opening_fee=self.opening_fee,
                client_id=None,
                managed=True,
            )
        return self.state


@dataclass(slots=True)
class _Pending:
    land_ms: int
    decided_ms: int
    decided_price: int
    decision: Decision


class Replay:
    """One replay run. ``Replay(history, portfolio, rules, candidate).run()`` → :class:`ReplayResult`."""

    def __init__(
        self,
        history: History,
        portfolio: Portfolio,
        rules: Rules,
        candidate: Candidate | None,
        *,
        fast: bool = True,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        if rules.latency_ms < 0:
            raise ReplayError("Latency must be 0 ms or more.")
        self.h = history
        self.rules = rules
        self.candidate = candidate
        self.fast = fast
        self.progress = progress
        self.balance = portfolio.balance
        self.trades: dict[str, _Trade] = {}
        self.pending: list[_Pending] = []
        self.pending_ids: set[str] = set()
        self.memory = Memory()
        self.active = candidate is not None
        self.reopens = 0
        self.entries = 0
        self.price = history.first_price()
        self.result = ReplayResult(
            label=candidate.label if candidate else "",
            kind=candidate.kind if candidate else "",
        )
        self.buckets = rules.buckets
        self._market_cache: dict[int, tuple[Decimal, Decimal, Decimal, tuple[Bucket, ...]]] = {}
        self.next_funding = self._funding_after(history.start_ms)
        # the band: every tick with lo ≤ price ≤ hi and time < valid_until is provably quiet
        self.lo = 1
        self.hi = 0
        self.valid_until = 0
        self.dirty = True
        self.hint_lo: int | None = None
        self.hint_hi: int | None = None
        self.min_price = min(history.lows)
        self.max_price = max(history.highs)
        self._open_initial(portfolio.trades)

    # -- quotes ----------------------------------------------------------------------------------------------------

    def half_spread(self, quantity: int) -> int:
        """The bucket's half spread in half-ticks (the last bucket for anything larger)."""
        for _, max_size, half in self.buckets:
            if quantity <= max_size:
                return half
        return self.buckets[-1][2]

    def bid_ask(self, price: int, quantity: int) -> tuple[Decimal, Decimal]:
        half = self.half_spread(quantity)
        return price_of(max(price - half, 1)), price_of(price + half)

    def market(self, price: int, now_ms: int) -> MarketSnapshot:
        cached = self._market_cache.get(price)
        if cached is None:
            buckets = tuple(
                Bucket(min_size=lo, max_size=hi, bid=price_of(max(price - half, 1)), ask=price_of(price + half))
                for lo, hi, half in self.buckets
            )
            first = min(buckets, key=lambda b: b.min_size)
            cached = (price_of(price), first.bid, first.ask, buckets)
            if len(self._market_cache) > 4096:
                self._market_cache.clear()
            self._market_cache[price] = cached
        last, bid, ask, buckets = cached
        return MarketSnapshot(last_price=last, index=last, bid=bid, ask=ask, time=_dt(now_ms), buckets=buckets)

    # -- set-up ----------------------------------------------------------------------------------------------------

    def _open_initial(self, specs: tuple[TradeSpec, ...]) -> None:
        first = self.h.first_price()
        start = self.h.start_ms
        capital = self.balance
        for spec in specs:
            if spec.quantity < 1 or spec.quantity > MAX_QUANTITY:
                raise ReplayError(f"Trade {spec.id}: the quantity must be between 1 and 500,000 USD.")
            if not 1 <= spec.leverage <= 100:
                raise ReplayError(f"Trade {spec.id}: the leverage must be between 1 and 100.")
            half = self.half_spread(spec.quantity)
            if spec.margin is not None and spec.liquidation is not None and spec.maintenance_margin is not None:
                entry = spec.entry_price if spec.entry_price is not None else price_of(first)
                trade = _Trade(
                    spec.id, spec.id, spec.side, spec.quantity, entry, spec.margin, spec.leverage,
                    spec.liquidation, spec.maintenance_margin, spec.opening_fee, half,
                )  # fmt: skip
                mark = self._mark(trade, first)
                capital += trade.margin + trade.maintenance + pnl(trade.side, trade.quantity, entry, mark)
            else:
                bid, ask = self.bid_ask(first, spec.quantity)
                entry = spec.entry_price if spec.entry_price is not None else (ask if spec.side == "buy" else bid)
                margin = margin_from_quantity(spec.quantity, entry, spec.leverage)
                liquidation = initial_liquidation_price(spec.side, spec.quantity, entry, spec.leverage)
                reserves = sum(fee_reserves(spec.quantity, entry, liquidation))
                opening = fee(spec.quantity, entry, self.rules.fee_rate)
                trade = _Trade(
                    spec.id, spec.id, spec.side, spec.quantity, entry, margin, spec.leverage,
                    liquidation, reserves - opening, opening, half,
                )  # fmt: skip
                capital += margin + reserves
                self.result.fees += opening
            if spec.stoploss:
                trade.set_stoploss(spec.stoploss)
            if spec.takeprofit:
                trade.set_takeprofit(spec.takeprofit)
            if spec.id in self.trades:
                raise ReplayError(f"Trade ids must be unique ({spec.id} repeats).")
            self.trades[spec.id] = trade
            self.result.outcomes[spec.id] = Outcome(spec.id)
            self._level(trade, start)
        self.result.start_equity = capital

    def _funding_after(self, ms: int) -> int:
        """The first funding time strictly after ``ms`` (the simulator's ``next_funding_time``)."""
        if not self.rules.funding_hours:
            return _FAR
        day = ms - ms % DAY_MS
        for offset in range(3):
            for hour in sorted(self.rules.funding_hours):
                moment = day + offset * DAY_MS + hour * HOUR_MS
                if moment > ms:
                    return moment
        return _FAR

    # -- the walk --------------------------------------------------------------------------------------------------

    def run(self) -> ReplayResult:
        h = self.h
        n = len(h)
        times, opens, highs, lows, closes = h.times, h.opens, h.highs, h.lows, h.closes
        candles = h.kind == "candles"
        span = h.span_ms
        offsets = (0, span // 4, span // 2, span * 3 // 4)
        last_offset = offsets[3] if candles else 0
        report_every = max(1, n // 200)
        i = 0
        while i < n:
            if self.fast and not self.dirty and not self.pending:
                lo, hi, limit = self.lo, self.hi, self.valid_until - last_offset
                j = i
                while j < n and lows[j] >= lo and highs[j] <= hi and times[j] < limit:
                    j += 1
                if j != i:
                    if self.progress is not None and j // report_every != i // report_every:
                        self.progress(j / n)
                    i = j
                    if i >= n:
                        break
            t = times[i]
            o, hi_, lo_, c = opens[i], highs[i], lows[i], closes[i]
            if not candles or (o == hi_ == lo_ == c):
                self._tick(t, o)
            elif self._low_first(hi_, lo_):
                self._tick(t, o)
                self._tick(t + offsets[1], lo_)
                self._tick(t + offsets[2], hi_)
                self._tick(t + offsets[3], c)
            else:
                self._tick(t, o)
                self._tick(t + offsets[1], hi_)
                self._tick(t + offsets[2], lo_)
                self._tick(t + offsets[3], c)
            i += 1
            if self.progress is not None and i % report_every == 0:
                self.progress(i / n)
        self._finish()
        return self.result

    def _low_first(self, high: int, low: int) -> bool:
        """The worst order: the extreme that takes some trade nearest to its liquidation comes first.

        With only longs that is the low, with only shorts the high; with both, whichever extreme gets closer (in
        percent) to a liquidation. With no trade, an Auto Entry long sees the high first (it buys, then the price
        falls), a short the low first; anything else the low first.
        """
        down = up = float("inf")
        for trade in self.trades.values():
            if trade.long:
                down = min(down, (low - trade.half_spread - trade.liq_ht) / low)
            else:
                up = min(up, (trade.liq_ht - high - trade.half_spread) / high)
        if down == up == float("inf") and self.candidate is not None:
            config = self.candidate.config
            if isinstance(config, AutoEntryConfig):
                return config.side == "sell"
        return down <= up

    def _tick(self, t: int, p: int) -> None:
        """One tick of the path: orders landing before it, the exchange's triggers, funding, then the engine."""
        self.result.ticks += 1
        fast = self.fast
        if fast and not self.dirty and self.lo <= p <= self.hi and t < self.valid_until and not self.pending:
            self.price = p
            return
        if self.pending and self.pending[0].land_ms < t:
            self._land(lambda land: land < t)
        self.price = p
        if self.trades:
            self._triggers(t, p)
        if t >= self.next_funding:
            self._funding(t, p)
            self.next_funding = self._funding_after(t)
        if self.pending and self.pending[0].land_ms <= t:
            self._land(lambda land: land <= t)
        if self.active and (not fast or self.dirty or not (self.lo <= p <= self.hi) or t >= self.valid_until):
            self._evaluate(t, p)
        if fast:
            self._band(t, p)

    # -- exchange rules --------------------------------------------------------------------------------------------

    def _mark(self, trade: _Trade, price: int) -> Decimal:
        """The price a trade closes at market: the bucket bid for a long, the ask for a short."""
        bid, ask = self.bid_ask(price, trade.quantity)
        return bid if trade.long else ask

    def _triggers(self, t: int, p: int) -> None:
        """Take-profit, then stop-loss, then liquidation (the simulator's order), on the worse of last and quote."""
        trades = list(self.trades.values())
        for reason in ("takeprofit", "stoploss", "liquidation"):
            for trade in trades:
                if trade.id not in self.trades:
                    continue
                ref = p - trade.half_spread if trade.long else p + trade.half_spread
                if reason == "takeprofit":
                    hit = trade.tp_ht and (ref >= trade.tp_ht if trade.long else ref <= trade.tp_ht)
                    level = trade.takeprofit
                elif reason == "stoploss":
                    hit = trade.sl_ht and (ref <= trade.sl_ht if trade.long else ref >= trade.sl_ht)
                    level = trade.stoploss
                else:
                    hit = ref <= trade.liq_ht if trade.long else ref >= trade.liq_ht
                    level = trade.liquidation
                if hit:
                    self._close(trade, level, t, reason)
                    self.result.actions.append(
                        Action(t, price_of(p), "exchange", reason, trade.id, str(level), _EXCHANGE_REASON[reason],
                               "done", level)
                    )  # fmt: skip
                    self._count(reason)

    def _close(self, trade: _Trade, exit_price: Decimal, t: int, reason: str) -> None:
        """Credit ``margin + pl + maintenance − closing fee`` (floored at 0); a liquidation loses the margin."""
        pl = -trade.margin if reason == "liquidation" else pnl(trade.side, trade.quantity, trade.entry, exit_price)
        closing = fee(trade.quantity, exit_price, self.rules.fee_rate)
        self.balance += max(trade.margin + pl + trade.maintenance - closing, 0)
        self.result.fees += closing
        if reason == "liquidation":
            self.result.liquidations += 1
        del self.trades[trade.id]
        outcome = self.result.outcomes.get(trade.lineage)
        if outcome is not None and reason != "reduce":
            outcome.closed_by = reason
            outcome.time_ms = t
        self._level(trade, t, closed=True)
        self.dirty = True

    def _funding(self, t: int, p: int) -> None:
        rate = self.rules.funding_rate
        if rate == 0 or not self.trades:
            return
        fixing = price_of(p)
        for trade in list(self.trades.values()):
            amount = funding_fee(trade.quantity, fixing, abs(rate))
            if (rate > 0) == trade.long:
                paid = min(amount, trade.margin)
                trade.margin -= paid
                if trade.margin > 0:
                    trade.leverage = quantize_leverage(leverage_of(trade.quantity, trade.margin, trade.entry))
                    trade.set_liquidation(liquidation_price(trade.side, trade.quantity, trade.entry, trade.margin))
                else:
                    trade.set_liquidation(trade.entry)
                self._drop_stoploss_past_liquidation(trade)
                self.result.funding += paid
                self._level(trade, t)
            else:
                self.balance += amount
                self.result.funding -= amount
            trade.state = None
        self._count("funding")
        self.dirty = True
        self._triggers(t, p)

    @staticmethod
    def _drop_stoploss_past_liquidation(trade: _Trade) -> None:
        if trade.stoploss and (
            trade.stoploss < trade.liquidation if trade.long else trade.stoploss > trade.liquidation
        ):
            trade.set_stoploss(Decimal(0))

    def _level(self, trade: _Trade, t: int, *, closed: bool = False) -> None:
        """Record the liquidation level of a lineage for the chart (None once the trade is gone)."""
        series = self.result.liquidation_levels.setdefault(trade.lineage, [])
        value = None if closed else float(trade.liquidation)
        if not series or series[-1][1] != value:
            series.append((t, value))

    # -- the engine ------------------------------------------------------------------------------------------------

    def _spec(self) -> AutomationSpec:
        assert self.candidate is not None
        return AutomationSpec(id=1, kind=self.candidate.kind, config=self.candidate.config, memory=self.memory)

    def _account(self) -> AccountState:
        trades = tuple(t.engine_state() for t in self.trades.values() if t.id not in self.pending_ids)
        return AccountState(balance=self.balance, trades=trades, entries_halted=False, kill_switch=False)

    def _call(self, t: int, p: int, account: AccountState) -> Evaluation:
        self.result.engine_calls += 1
        return evaluate_safe(self._spec(), self.market(p, t), account, _dt(t))

    def _evaluate(self, t: int, p: int) -> None:
        evaluation = self._call(t, p, self._account())
        if evaluation.memory is not self.memory:
            self.memory = evaluation.memory
            self.dirty = True
        if evaluation.completed:
            self.active = False
            self.dirty = True
        for decision in evaluation.decisions:
            self.dirty = True
            if isinstance(decision, Skip):
                self._record(t, p, decision, "skipped", decision.trade_id or "", "")
                continue
            trade_id = getattr(decision, "trade_id", "")
            if trade_id:
                self.pending_ids.add(trade_id)
            self.pending.append(_Pending(t + self.rules.latency_ms, t, p, decision))
        if self.rules.latency_ms == 0 and self.pending:
            self._land(lambda land: land <= t)

    def _record(self, t: int, p: int, decision: Decision, outcome: str, trade_id: str, value: str,
                fill: Decimal | None = None) -> None:  # fmt: skip
        reason = str(getattr(decision, "reason", ""))
        facts = decision_facts(decision.to_json(), decision.inputs)
        self.result.actions.append(
            Action(t, price_of(p), "automation", decision.kind, trade_id, value, reason, outcome, fill, facts)
        )
        self._count(decision.kind if outcome != "skipped" else "skip")

    def _count(self, kind: str) -> None:
        self.result.counts[kind] = self.result.counts.get(kind, 0) + 1

    # -- orders landing --------------------------------------------------------------------------------------------

    def _land(self, due: Callable[[int], bool]) -> None:
        """Execute the orders whose landing time is due, in order, at the price in force then."""
        while self.pending and due(self.pending[0].land_ms):
            order = self.pending.pop(0)
            decision = order.decision
            trade_id = getattr(decision, "trade_id", "")
            self.pending_ids.discard(trade_id)
            self.dirty = True
            outcome, value, fill = self._execute(decision, order.land_ms)
            self._record(order.decided_ms, order.decided_price, decision, outcome, trade_id, value, fill)

    def _execute(self, decision: Decision, t: int) -> tuple[str, str, Decimal | None]:
        p = self.price
        if isinstance(decision, OpenPosition):
            return self._open(decision, t)
        trade = self.trades.get(getattr(decision, "trade_id", ""))
        if trade is None:
            return "rejected: the trade is no longer running", "", None
        if isinstance(decision, ClosePosition):
            mark = self._mark(trade, p)
            self._close(trade, mark, t, "automation")
            return "done", str(trade.quantity), mark
        if isinstance(decision, ReducePosition):
            return self._reduce(trade, decision, t)
        if isinstance(decision, AddMargin):
            return self._add_margin(trade, decision.amount, t)
        if isinstance(decision, SetStopLoss):
            problem = self._stoploss_problem(trade, decision.price, self._mark(trade, p))
            if problem:
                return f"rejected: {problem}", str(decision.price), None
            trade.set_stoploss(decision.price)
            return "done", str(decision.price), None
        if isinstance(decision, SetTakeProfit):
            bid, ask = self.bid_ask(p, trade.quantity)
            problem = self._takeprofit_problem(trade, decision.price, ask if trade.long else bid)
            if problem:
                return f"rejected: {problem}", str(decision.price), None
            trade.set_takeprofit(decision.price)
            return "done", str(decision.price), None
        return "rejected: unknown decision", "", None

    def _add_margin(self, trade: _Trade, amount: int, t: int) -> tuple[str, str, Decimal | None]:
        if amount > self.balance:
            return f"rejected: insufficient funds ({self.balance} sats free)", str(amount), None
        margin = trade.margin + amount
        leverage = leverage_of(trade.quantity, margin, trade.entry)
        if leverage < 1:
            return "rejected: leverage would fall below 1", str(amount), None
        self.balance -= amount
        trade.margin = margin
        trade.leverage = quantize_leverage(leverage)
        trade.set_liquidation(liquidation_price(trade.side, trade.quantity, trade.entry, margin))
        self._drop_stoploss_past_liquidation(trade)
        self.result.margin_added += amount
        self._level(trade, t)
        return "done", str(amount), None

    @staticmethod
    def _stoploss_problem(trade: _Trade, value: Decimal, ref: Decimal) -> str:
        """The simulator's rules for a stop-loss (docs/protocol.md §9.7); empty when accepted."""
        if value == trade.stoploss:
            return "the new value is the same as the previous one"
        if trade.long:
            if not trade.liquidation <= value < ref:
                return f"stop-loss must be ≥ liquidation ({trade.liquidation}) and < {ref}"
            if trade.takeprofit and value >= trade.takeprofit:
                return "stop-loss must be below the take-profit"
        else:
            if not ref < value <= trade.liquidation:
                return f"stop-loss must be > {ref} and ≤ liquidation ({trade.liquidation})"
            if trade.takeprofit and value <= trade.takeprofit:
                return "stop-loss must be above the take-profit"
        return ""

    @staticmethod
    def _takeprofit_problem(trade: _Trade, value: Decimal, ref: Decimal) -> str:
        if value == trade.takeprofit:
            return "the new value is the same as the previous one"
        if trade.long:
            if not value > ref:
                return f"take-profit must be > {ref}"
            if trade.stoploss and value <= trade.stoploss:
                return "take-profit must be above the stop-loss"
        else:
            if not value < ref:
                return f"take-profit must be < {ref}"
            if trade.stoploss and value >= trade.stoploss:
                return "take-profit must be below the stop-loss"
        return ""

    def _new_trade(
        self, trade_id: str, lineage: str, side: Side, quantity: int, fill: Decimal, margin: int, leverage: Decimal,
        liquidation: Decimal, stoploss: Decimal | None, takeprofit: Decimal | None, t: int,
    ) -> tuple[_Trade | None, str]:  # fmt: skip
        """Open at ``fill`` after the order checks; (trade, "") or (None, why it was refused)."""
        if quantity > MAX_QUANTITY:
            return None, "quantity must be ≤ 500,000 USD"
        reserves = sum(fee_reserves(quantity, fill, liquidation))
        opening = fee(quantity, fill, self.rules.fee_rate)
        trade = _Trade(trade_id, lineage, side, quantity, fill, margin, leverage, liquidation, reserves - opening,
                       opening, self.half_spread(quantity))  # fmt: skip
        if stoploss is not None:
            if not (liquidation <= stoploss < fill if trade.long else fill < stoploss <= liquidation):
                return None, f"stop-loss {stoploss} is refused (fill {fill}, liquidation {liquidation})"
            trade.set_stoploss(stoploss)
        if takeprofit is not None:
            if not (takeprofit > fill if trade.long else takeprofit < fill):
                return None, f"take-profit {takeprofit} is refused (fill {fill})"
            if stoploss is not None and (takeprofit <= stoploss if trade.long else takeprofit >= stoploss):
                return None, "take-profit and stop-loss cross"
            trade.set_takeprofit(takeprofit)
        if margin + reserves > self.balance:
            return None, f"insufficient funds: {margin + reserves} sats needed, {self.balance} free"
        self.balance -= margin + reserves
        self.result.fees += opening
        self.trades[trade_id] = trade
        self._level(trade, t)
        return trade, ""

    def _reduce(self, trade: _Trade, decision: ReducePosition, t: int) -> tuple[str, str, Decimal | None]:
        p = self.price
        mark = self._mark(trade, p)
        self._close(trade, mark, t, "reduce")
        quantity = decision.reopen_quantity
        bid, ask = self.bid_ask(p, quantity)
        fill = ask if trade.long else bid
        leverage = decision.leverage
        margin = margin_from_quantity(quantity, fill, leverage)
        liquidation = initial_liquidation_price(trade.side, quantity, fill, leverage)
        self.reopens += 1
        new_id = f"{trade.lineage}.r{self.reopens}"
        opened, problem = self._new_trade(
            new_id, trade.lineage, trade.side, quantity, fill, margin, leverage, liquidation,
            decision.stoploss, decision.takeprofit, t,
        )  # fmt: skip
        outcome = self.result.outcomes.get(trade.lineage)
        if opened is None:
            if outcome is not None:
                outcome.closed_by, outcome.time_ms = "automation", t
            return f"closed; reopen rejected: {problem}", f"{decision.close_quantity}/{quantity}", mark
        self.memory = self.memory.carry_over(trade.id, new_id)
        return "done", f"{decision.close_quantity}/{quantity}", mark

    def _open(self, decision: OpenPosition, t: int) -> tuple[str, str, Decimal | None]:
        p = self.price
        long = decision.side == "buy"
        leverage = decision.leverage
        if decision.quantity is not None:
            quantity = decision.quantity
            fill = self._entry_fill(p, quantity, long)
            margin = margin_from_quantity(quantity, fill, leverage)
            liquidation = initial_liquidation_price(decision.side, quantity, fill, leverage)
        else:
            assert decision.margin is not None
            margin = decision.margin
            quantity = quantity_from_margin(margin, self._entry_fill(p, 1, long), leverage)
            fill = self._entry_fill(p, max(quantity, 1), long)
            quantity = quantity_from_margin(margin, fill, leverage)
            if quantity < 1:
                return "rejected: margin is too small for 1 USD", str(margin), None
            liquidation = liquidation_price(decision.side, quantity, fill, margin)
        stoploss = decision.stoploss
        takeprofit = decision.takeprofit
        notes = []
        self.entries += 1
        trade_id = f"e{self.entries}"
        opened, problem = self._new_trade(
            trade_id, trade_id, decision.side, quantity, fill, margin, leverage, liquidation, stoploss, takeprofit, t
        )
        if opened is None:
            self.entries -= 1
            return f"rejected: {problem}", str(quantity), None
        self.result.outcomes[trade_id] = Outcome(trade_id)
        # SL/TP given as a percentage are set after the fill, as the live service does (a refusal leaves none)
        mark = self._mark(opened, p)
        bid, ask = self.bid_ask(p, quantity)
        if decision.stoploss_percent is not None:
            value = stoploss_from_percent(decision.side, fill, decision.stoploss_percent)
            problem = self._stoploss_problem(opened, value, mark)
            notes.append(f"stop-loss {value} refused: {problem}" if problem else f"stop-loss {value}")
            if not problem:
                opened.set_stoploss(value)
        if decision.takeprofit_percent is not None:
            value = takeprofit_from_percent(decision.side, fill, decision.takeprofit_percent)
            problem = self._takeprofit_problem(opened, value, ask if long else bid)
            notes.append(f"take-profit {value} refused: {problem}" if problem else f"take-profit {value}")
            if not problem:
                opened.set_takeprofit(value)
        outcome = "done" + (f" ({'; '.join(notes)})" if notes else "")
        return outcome, f"{trade_id}: {quantity} USD", fill

    def _entry_fill(self, p: int, quantity: int, long: bool) -> Decimal:
        """A market entry fills at the bucket ask (buy) or bid (sell). On candles, a price-triggered entry never
        fills better than its trigger price: the four ticks of a candle jump over the prices in between."""
        bid, ask = self.bid_ask(p, quantity)
        fill = ask if long else bid
        config = self.candidate.config if self.candidate else None
        if self.h.kind == "candles" and isinstance(config, AutoEntryConfig) and config.trigger_price is not None:
            t_bid, t_ask = self.bid_ask(to_half_ticks(config.trigger_price), quantity)
            fill = max(fill, t_ask) if long else min(fill, t_bid)
        return fill

    # -- the fast path ---------------------------------------------------------------------------------------------

    def _silent(self, p: int, t: int, account: AccountState) -> bool:
        """The engine would decide nothing and keep its memory at price ``p`` and time ``t``."""
        evaluation = self._call(t, p, account)
        return not evaluation.decisions and evaluation.memory is self.memory and not evaluation.completed

    def _band(self, t: int, p: int) -> None:
        """Recompute the quiet band around ``p`` and until when it holds (only after something changed)."""
        if not self.dirty and t < self.valid_until and self.lo <= p <= self.hi:
            return
        self.dirty = False
        lo, hi = self.min_price, self.max_price
        # exchange triggers, in last-price terms (a long's reference is last − half spread, a short's last + it)
        for trade in self.trades.values():
            half = trade.half_spread
            if trade.long:
                lo = max(lo, trade.liq_ht + half + 1, (trade.sl_ht + half + 1) if trade.sl_ht else 0)
                if trade.tp_ht:
                    hi = min(hi, trade.tp_ht + half - 1)
            else:
                hi = min(hi, trade.liq_ht - half - 1)
                if trade.sl_ht:
                    hi = min(hi, trade.sl_ht - half - 1)
                if trade.tp_ht:
                    lo = max(lo, trade.tp_ht - half + 1)
        until = min(self.next_funding, self.pending[0].land_ms if self.pending else _FAR)
        if self.active and not (lo > p or hi < p):
            lo, hi, until = self._engine_band(t, p, lo, hi, until)
        self.lo, self.hi, self.valid_until = lo, hi, until

    def _engine_band(self, t: int, p: int, lo: int, hi: int, until: int) -> tuple[int, int, int]:
        """Narrow [lo, hi] to where the engine is silent, and ``until`` to its next time-dependent change.

        Sound because, for every kind, the prices at which the engine is not silent lie on one side of the current
        price per trade (a trigger is a half-line; see docs/backtest.md): so the nearest non-silent price on each
        side is found by galloping and bisection. An Auto Entry inside its trigger zone with a skip pending is the
        exception (the skip's reason can change with the price): there the band is just the current price.
        """
        account = self._account()
        if not self._silent(p, t, account):
            return p + 1, p - 1, until
        config = self.candidate.config if self.candidate else None
        if isinstance(config, AutoEntryConfig) and self.memory.skip is not None:
            return p, p, min(until, self._horizon(t))
        lo = self._edge(p, lo, -1, account, t)
        hi = self._edge(p, hi, +1, account, t)
        self.hint_lo, self.hint_hi = lo, hi
        return lo, hi, min(until, self._horizon(t))

    def _edge(self, p: int, cap: int, direction: int, account: AccountState, t: int) -> int:
        """The farthest price from ``p`` towards ``cap`` with the engine silent all the way (``p`` is silent)."""
        if cap == p or self._silent(cap, t, account):
            return cap
        good, bad = p, cap  # silent at good, not at bad
        hint = self.hint_lo if direction < 0 else self.hint_hi
        outward = True
        if hint is not None and (bad < hint < good if direction < 0 else good < hint < bad):
            if self._silent(hint, t, account):
                good = hint
            else:
                bad = hint
                outward = False
        step = 1
        while abs(good - bad) > 1:  # gallop from the side nearest the last edge, doubling the step
            probe = good + direction * step if outward else bad - direction * step
            if not (min(good, bad) < probe < max(good, bad)):
                break
            if self._silent(probe, t, account):
                good = probe
                if not outward:
                    break
            else:
                bad = probe
                if outward:
                    break
            step *= 2
        while abs(good - bad) > 1:
            mid = (good + bad) // 2
            if self._silent(mid, t, account):
                good = mid
            else:
                bad = mid
        return good

    def _horizon(self, t: int) -> int:
        """The next time at which the engine's answer may change with time alone: the end of a cooldown, a repeat
        cooldown or the memory retention, counted from every time stamp in the memory."""
        config = self.candidate.config if self.candidate else None
        durations = [int(MEMORY_RETENTION.total_seconds() * 1000)]
        for name in ("cooldown_seconds", "repeat_cooldown_seconds"):
            seconds = getattr(config, name, None)
            if isinstance(seconds, int):
                durations.append(seconds * 1000)
        stamps = [m.last_action_at for m in self.memory.trades.values() if m.last_action_at is not None]
        if self.memory.last_fire_at is not None:
            stamps.append(self.memory.last_fire_at)
        until = _FAR
        for stamp in stamps:
            base = _ms(stamp)
            for duration in durations:
                moment = base + duration
                if moment > t:
                    until = min(until, moment)
                elif moment == t:
                    until = min(until, t + 1)
        return until

    # -- the end ---------------------------------------------------------------------------------------------------

    def _finish(self) -> None:
        """Orders still in flight land at the last price; open trades are valued at the last price."""
        self.price = self.h.closes[-1]
        if self.pending:
            self._land(lambda land: True)
        p = self.price
        equity = self.balance
        for trade in self.trades.values():
            mark = self._mark(trade, p)
            value = trade.margin + pnl(trade.side, trade.quantity, trade.entry, mark) + trade.maintenance
            equity += max(value - fee(trade.quantity, mark, self.rules.fee_rate), 0)
        self.result.final_balance = self.balance
        self.result.end_equity = equity
        end = self.h.end_ms
        for trade in self.trades.values():
            self._level(trade, end)


_EXCHANGE_REASON = {
    "takeprofit": "The exchange's take-profit was hit.",
    "stoploss": "The exchange's stop-loss was hit.",
    "liquidation": "The exchange liquidated the trade (the whole margin is lost).",
}


def replay(
    history: History,
    portfolio: Portfolio,
    rules: Rules,
    candidate: Candidate | None,
    *,
    fast: bool = True,
    progress: Callable[[float], None] | None = None,
) -> ReplayResult:
    """Replay ``candidate`` (None: the portfolio with no automation) over ``history``."""
    return Replay(history, portfolio, rules, candidate, fast=fast, progress=progress).run()
