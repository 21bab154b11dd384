"""Benchmark of the backtest replay (issue #18): one year of 1-minute candles through Margin Guards, on one core.

The history is a seeded random walk (60 % annual volatility, start 100 000 USD, 2026-01-01 UTC): 525,600 candles,
walked as four ticks each in the worst-case order. The portfolio is three trades (a 10x long, a 5x short and a 25x
long) and 1 000 000 sats; funding every 8 h at 0.01 %, Tier-1 fees, 1 s order latency.

1. One Margin Guard (add margin to restore 15 % when the distance to liquidation is ≤ 8 %): timed alone.
2. The same history through 10 configurations (close / reduce / add margin at several thresholds and both
   triggers), one after the other, plus the no-automation baseline.

Only the replay is timed (not generating the candles). Last line:
``RESULT candles=525600 seconds=<s> candles_per_s=<n> configs10_seconds=<s> …``.
Run: ``.venv/bin/python bench/backtest.py``.
"""

from __future__ import annotations

import math
import random
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from automations.engine import MarginGuardConfig  # noqa: E402
from backtest.history import History, build  # noqa: E402
from backtest.replay import Candidate, Portfolio, Rules, TradeSpec, replay  # noqa: E402

CANDLES = 525_600
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def year_of_candles(seed: int = 7, count: int = CANDLES) -> History:
    """A seeded geometric random walk, one candle a minute; wicks from two extra draws inside the minute."""
    rng = random.Random(seed)
    sigma = 0.6 / math.sqrt(CANDLES)
    price = 200_000.0  # in half-ticks: 100 000 USD
    rows = []
    for minute in range(count):
        open_ = round(price)
        a = price * math.exp(rng.gauss(0.0, sigma))
        b = a * math.exp(rng.gauss(0.0, sigma))
        price = b * math.exp(rng.gauss(0.0, sigma))
        close = round(price)
        high = max(open_, close, round(a), round(b))
        low = min(open_, close, round(a), round(b))
        rows.append((START_MS + minute * 60_000, open_, high, low, close))
    return build("candles", 60_000, rows)


PORTFOLIO = Portfolio(
    1_000_000,
    (
        TradeSpec("long-10x", "buy", 500, Decimal(10)),
        TradeSpec("short-5x", "sell", 300, Decimal(5)),
        TradeSpec("long-25x", "buy", 200, Decimal(25)),
    ),
)
RULES = Rules()


def guard(**fields: object) -> MarginGuardConfig:
    return MarginGuardConfig(**fields)  # type: ignore[arg-type]


MAIN = Candidate(
    "add 15 % at 8 %",
    "margin_guard",
    guard(
        trigger="liquidation_distance",
        threshold=Decimal(8),
        action="add_margin",
        add_margin_mode="restore_distance",
        target_distance=Decimal(15),
    ),
)

TEN = [
    MAIN,
    Candidate(
        "close at 5 %", "margin_guard", guard(trigger="liquidation_distance", threshold=Decimal(5), action="close")
    ),
    Candidate(
        "close at 10 %", "margin_guard", guard(trigger="liquidation_distance", threshold=Decimal(10), action="close")
    ),
    Candidate(
        "reduce 50 % at 6 %",
        "margin_guard",
        guard(trigger="liquidation_distance", threshold=Decimal(6), action="reduce", reduce_percent=Decimal(50)),
    ),
    Candidate(
        "add 20k at 5 %",
        "margin_guard",
        guard(
            trigger="liquidation_distance",
            threshold=Decimal(5),
            action="add_margin",
            add_margin_mode="fixed",
            add_margin_amount=20_000,
            max_added_per_trade=200_000,
        ),
    ),
    Candidate(
        "restore 20 % at 10 %",
        "margin_guard",
        guard(
            trigger="liquidation_distance",
            threshold=Decimal(10),
            action="add_margin",
            add_margin_mode="restore_distance",
            target_distance=Decimal(20),
        ),
    ),
    Candidate(
        "close at ratio 30", "margin_guard", guard(trigger="margin_ratio", threshold=Decimal(30), action="close")
    ),
    Candidate(
        "reduce 30 % at ratio 20",
        "margin_guard",
        guard(trigger="margin_ratio", threshold=Decimal(20), action="reduce", reduce_percent=Decimal(30)),
    ),
    Candidate(
        "add 10k at ratio 15",
        "margin_guard",
        guard(
            trigger="margin_ratio",
            threshold=Decimal(15),
            action="add_margin",
            add_margin_mode="fixed",
            add_margin_amount=10_000,
        ),
    ),
    Candidate(
        "close at 3 %", "margin_guard", guard(trigger="liquidation_distance", threshold=Decimal(3), action="close")
    ),
]


def main() -> None:
    history = year_of_candles()
    assert len(history) == CANDLES
    started = time.perf_counter()
    result = replay(history, PORTFOLIO, RULES, MAIN)
    seconds = time.perf_counter() - started
    print(
        f"one guard: {seconds:.2f} s, {result.engine_calls} engine calls, {result.ticks} ticks looked at, "
        f"actions {result.counts}, PnL {result.pnl} sats"
    )
    started = time.perf_counter()
    baseline = replay(history, PORTFOLIO, RULES, None)
    for candidate in TEN:
        other = replay(history, PORTFOLIO, RULES, candidate)
        print(
            f"  {candidate.label:>24}: PnL {other.pnl:>9} liquidations {other.liquidations} calls {other.engine_calls}"
        )
    ten = time.perf_counter() - started
    print(f"  baseline: PnL {baseline.pnl} liquidations {baseline.liquidations}")
    print(
        f"RESULT candles={CANDLES} seconds={seconds:.2f} candles_per_s={CANDLES / seconds:.0f} "
        f"configs10_seconds={ten:.2f}"
    )


if __name__ == "__main__":
    main()
