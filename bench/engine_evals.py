"""Benchmark: trade evaluations per second of the pure automation engine on one core.

Each round evaluates a Margin Guard (margin-ratio trigger, add-margin restore) and a TP/SL spec (trailing stop) over
an account of 3 running trades, with a slightly moving price so that the mark, PnL and ratios are recomputed every
time, and with the memory returned by the previous round (as the service does). One trade evaluation = one trade
looked at by one spec. Each evaluation goes through ``automations.engine.evaluate``, which dispatches to the kind's
evaluator through the kind registry (``automations.kinds``). Target (issue #14): ≥ 100,000/s.

The wall-clock rate is the result; the rate per second of this process's CPU time is printed too, since on a busy
machine the wall clock also counts the time other processes hold the core.

Run: ``.venv/bin/python -m bench.engine_evals`` (last line:
``RESULT engine_evals_per_s=<n> engine_evals_per_cpu_s=<n>``).
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

# Runnable as ``python bench/engine_evals.py`` too: put the project root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from automations.engine import (  # noqa: E402
    AccountState,
    AutomationSpec,
    Bucket,
    MarginGuardConfig,
    MarketSnapshot,
    TpSlConfig,
    TradeState,
    evaluate,
)
from lnmarkets.maths import Side, fee, initial_liquidation_price, margin_from_quantity  # noqa: E402


def _trade(trade_id: str, side: Side, quantity: int, entry: Decimal, leverage: Decimal) -> TradeState:
    liquidation = initial_liquidation_price(side, quantity, entry, leverage)
    return TradeState(
        id=trade_id,
        side=side,
        quantity=quantity,
        entry_price=entry,
        margin=margin_from_quantity(quantity, entry, leverage),
        leverage=leverage,
        liquidation=liquidation,
        stoploss=Decimal(0),
        takeprofit=Decimal(0),
        maintenance_margin=fee(quantity, liquidation),
        opening_fee=fee(quantity, entry),
        client_id=None,
        managed=True,
    )


def measure_engine_evals_per_s(seconds: float = 2.0) -> int:
    """Trade evaluations per second over ``seconds`` of wall time on the calling thread."""
    return measure(seconds)[0]


def measure(seconds: float = 2.0) -> tuple[int, int]:
    """(evaluations per wall-clock second, per second of this process's CPU time) over ``seconds``."""
    start_time = datetime(2026, 1, 1, tzinfo=UTC)
    trades = (
        _trade("a", "buy", 100, Decimal(100000), Decimal(10)),
        _trade("b", "sell", 2500, Decimal(100500), Decimal(25)),
        _trade("c", "buy", 40000, Decimal(99000), Decimal(5)),
    )
    account = AccountState(balance=5_000_000, trades=trades, entries_halted=False, kill_switch=False)
    guard = AutomationSpec(
        1,
        "margin_guard",
        MarginGuardConfig(
            "margin_ratio",
            Decimal(80),
            "add_margin",
            add_margin_mode="restore_distance",
            target_distance=Decimal(15),
            max_added_per_trade=100_000,
        ),
    )
    tpsl = AutomationSpec(
        2, "tpsl", TpSlConfig("profit", Decimal(5), "trailing_stoploss", trailing_distance=Decimal(800))
    )
    # A small cycle of prices (on the tick) so every evaluation does real work.
    markets = []
    for i in range(64):
        last = Decimal(100000) + Decimal(i % 16) * Decimal("12.5")
        buckets = (
            Bucket(1, 1000, last - Decimal("0.5"), last + Decimal("0.5")),
            Bucket(1001, 50000, last - Decimal("2.5"), last + Decimal("2.5")),
        )
        markets.append((last, buckets))
    specs = [guard, tpsl]
    count = 0
    rounds = 0
    began = time.perf_counter()
    began_cpu = time.process_time()
    deadline = began + seconds
    while True:
        last, buckets = markets[rounds % len(markets)]
        now = start_time + timedelta(seconds=rounds)
        market = MarketSnapshot(last, last, last - Decimal("0.5"), last + Decimal("0.5"), now, buckets)
        for index, spec in enumerate(specs):
            evaluation = evaluate(spec, market, account, now)
            if evaluation.memory is not spec.memory:
                specs[index] = AutomationSpec(spec.id, spec.kind, spec.config, evaluation.memory)
            count += len(account.trades)
        rounds += 1
        if rounds % 16 == 0 and time.perf_counter() >= deadline:
            break
    wall = time.perf_counter() - began
    cpu = time.process_time() - began_cpu
    return int(count / wall), int(count / max(cpu, 1e-9))


if __name__ == "__main__":
    per_wall, per_cpu = measure()
    print(f"wall clock: {per_wall:,} trade evaluations/s; CPU time: {per_cpu:,}/s (one core)")
    print(f"RESULT engine_evals_per_s={per_wall} engine_evals_per_cpu_s={per_cpu}")
