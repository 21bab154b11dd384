"""The fast path skips ticks only where nothing can happen: it gives exactly the every-tick result.

Every field of the result is compared (actions with time, price, outcome and fill; balances; fees; funding;
liquidations; liquidation levels), over generated histories, portfolios, rules and configurations of all three
kinds, and over the four stress scenarios with many seeds.
"""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtest.history import build
from backtest.replay import Candidate, Portfolio, ReplayResult, Rules, TradeSpec, replay
from backtest.scenarios import SCENARIOS, scenario_history
from tests.backtest.helpers import START_MS, entry, guard, long, portfolio, short, tpsl


def fingerprint(result: ReplayResult) -> tuple[object, ...]:
    return (
        [a.as_json() for a in result.actions],
        result.start_equity,
        result.end_equity,
        result.final_balance,
        result.fees,
        result.funding,
        result.margin_added,
        result.liquidations,
        {k: (v.closed_by, v.time_ms) for k, v in result.outcomes.items()},
        result.liquidation_levels,
        result.counts,
    )


def assert_same(history, folio, rules, candidate) -> ReplayResult:
    fast = replay(history, folio, rules, candidate, fast=True)
    naive = replay(history, folio, rules, candidate, fast=False)
    assert fingerprint(fast) == fingerprint(naive)
    return fast


CANDIDATES = [
    None,
    guard("close 5", threshold=Decimal(5)),
    guard("close 12 cooldown 0", threshold=Decimal(12), cooldown_seconds=0),
    guard("reduce", trigger="margin_ratio", threshold=Decimal(40), action="reduce", reduce_percent=Decimal(40)),
    guard("reduce dist", threshold=Decimal(7), action="reduce", reduce_percent=Decimal(50), cooldown_seconds=30),
    guard(
        "restore",
        threshold=Decimal(8),
        action="add_margin",
        add_margin_mode="restore_distance",
        target_distance=Decimal(15),
        max_added_per_trade=30_000,
    ),
    guard(
        "fixed",
        trigger="margin_ratio",
        threshold=Decimal(20),
        action="add_margin",
        add_margin_mode="fixed",
        add_margin_amount=5000,
        cooldown_seconds=120,
    ),
    tpsl(
        "trail",
        direction="profit",
        trigger_percent=Decimal(4),
        action="trailing_stoploss",
        trailing_distance=Decimal(300),
    ),
    tpsl("be", direction="profit", trigger_percent=Decimal(3), action="breakeven"),
    tpsl("loss close", direction="loss", trigger_percent=Decimal(30), action="close"),
    tpsl("sl", direction="loss", trigger_percent=Decimal(20), action="set_stoploss", price=Decimal(90000)),
    tpsl("tp", direction="profit", trigger_percent=Decimal(2), action="set_takeprofit", price=Decimal(110000)),
    entry("dip", trigger="price_below", trigger_price=Decimal(97000), repeat_count=2, repeat_cooldown_seconds=300),
    entry(
        "breakout short", side="sell", trigger="price_above", trigger_price=Decimal(102000), stoploss_percent=Decimal(3)
    ),
    entry("immediate", trigger="immediate", quantity=None, margin=20_000, repeat_count=3, repeat_cooldown_seconds=3600),
    entry("too big", trigger="price_below", trigger_price=Decimal(99000), quantity=400_000),
]

PORTFOLIOS = [
    portfolio(long("a", 500, 10), short("b", 300, 5), long("c", 200, 25)),
    portfolio(long("big", 20_000, 20, stoploss=Decimal(90000)), balance=300_000),
    portfolio(short("s1", 1000, 15, takeprofit=Decimal(90000)), short("s2", 150, 50)),
    portfolio(balance=200_000),
]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
@pytest.mark.parametrize("seed", [1, 2])
def test_fast_path_equals_every_tick_on_the_stress_scenarios(name, seed):
    history = scenario_history(name, seed, minutes=720 if name in ("slow_bleed", "sideways_chop") else None)
    rng = random.Random(seed)
    for candidate in CANDIDATES:
        folio = PORTFOLIOS[rng.randrange(len(PORTFOLIOS))]
        rules = Rules(latency_ms=rng.choice([0, 1000, 20_000]), funding_rate=Decimal(rng.choice(["0.0001", "-0.0003"])))
        assert_same(history, folio, rules, candidate)


def test_fast_path_skips_most_of_the_work():
    history = scenario_history("slow_bleed", 4)
    candidate = CANDIDATES[5]
    fast = replay(history, PORTFOLIOS[0], Rules(), candidate, fast=True)
    naive = replay(history, PORTFOLIOS[0], Rules(), candidate, fast=False)
    assert fingerprint(fast) == fingerprint(naive)
    assert fast.ticks * 50 < naive.ticks  # ticks looked at
    assert fast.engine_calls * 5 < naive.engine_calls


@st.composite
def histories(draw):
    kind = draw(st.sampled_from(["candles", "ticks"]))
    n = draw(st.integers(min_value=1, max_value=160))
    seed = draw(st.integers(min_value=0, max_value=10_000))
    vol = draw(st.sampled_from([0.001, 0.004, 0.012]))
    rng = random.Random(seed)
    price = 200_000.0
    rows = []
    t = START_MS + draw(st.integers(min_value=0, max_value=23)) * 3_600_000
    span = draw(st.sampled_from([60_000, 300_000, 3_600_000])) if kind == "candles" else 0
    for _ in range(n):
        o = round(price)
        a = price * (1 + rng.gauss(0, vol))
        b = a * (1 + rng.gauss(0, vol))
        price = max(b * (1 + rng.gauss(0, vol)), 40_000)
        c = round(price)
        if kind == "ticks":
            rows.append((t, o, o, o, o))
            t += rng.choice([500, 1000, 5000, 60_000, 3_600_000])
        else:
            rows.append((t, o, max(o, c, round(a), round(b)), min(o, c, round(a), round(b)), c))
            t += span
    return build(kind, span, rows)


trade_specs = st.builds(
    TradeSpec,
    id=st.sampled_from(["a", "b", "c"]),
    side=st.sampled_from(["buy", "sell"]),
    quantity=st.sampled_from([1, 50, 500, 15_000, 120_000]),
    leverage=st.sampled_from([Decimal(1), Decimal(3), Decimal(10), Decimal(25), Decimal(60)]),
)


@given(
    history=histories(),
    trades=st.lists(trade_specs, max_size=3, unique_by=lambda t: t.id),
    balance=st.sampled_from([0, 50_000, 5_000_000]),
    candidate=st.sampled_from(CANDIDATES),
    latency=st.sampled_from([0, 700, 15_000, 600_000]),
    funding=st.sampled_from([Decimal(0), Decimal("0.0001"), Decimal("-0.001"), Decimal("0.01")]),
)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_fast_path_equals_every_tick_hypothesis(history, trades, balance, candidate, latency, funding):
    rules = Rules(latency_ms=latency, funding_rate=funding)
    assert_same(history, Portfolio(balance, tuple(trades)), rules, candidate)


def test_candidates_cover_every_kind():
    kinds = {c.kind for c in CANDIDATES if isinstance(c, Candidate)}
    assert kinds == {"margin_guard", "tpsl", "auto_entry"}
