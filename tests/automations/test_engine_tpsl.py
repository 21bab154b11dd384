"""TP/SL management: signed PnL triggers at the bid/ask mark, LN Markets' SL/TP rules, break-even, trailing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from automations.engine import (
    ClosePosition,
    Memory,
    SetStopLoss,
    SetTakeProfit,
    Skip,
    TpSlConfig,
    TradeMemory,
    breakeven_stoploss,
    evaluate,
)
from automations.specs import Bucket
from lnmarkets.maths import TICK, fee, pnl

from .builders import NOW, D, account, market, spec, trade


def tpsl(direction: str = "profit", trigger: str = "10", action: str = "close", **kwargs: object) -> TpSlConfig:
    return TpSlConfig(direction, D(trigger), action, **kwargs)  # type: ignore[arg-type]


def pnl_percent_at(side: str, price: str) -> Decimal:
    """The engine's PnL % for the reference trade marked at ``price``."""
    return Decimal(pnl(side, 100, D(100000), D(price))) * 100 / 10000  # type: ignore[arg-type]


# --- triggers -------------------------------------------------------------------------------------------------------

# (side, direction, mark) where the mark is the bid for a long and the ask for a short.
TRIGGER_CASES = [
    ("buy", "profit", "105000"),
    ("buy", "loss", "97000"),
    ("sell", "profit", "95000"),
    ("sell", "loss", "103000"),
]


@pytest.mark.parametrize(("side", "direction", "mark"), TRIGGER_CASES)
@pytest.mark.parametrize(
    ("offset", "fires"), [("0", True), ("-0.01", True), ("0.01", False)], ids=["exactly", "inside", "outside"]
)
def test_signed_trigger_exactly_at_threshold(side, direction, mark, offset, fires):
    percent = pnl_percent_at(side, mark)
    magnitude = abs(percent) + D(offset)
    snapshot = market(mark, bid=mark, ask=D(mark) + 1) if side == "buy" else market(mark, bid=D(mark) - 1, ask=mark)
    result = evaluate(spec(tpsl(direction, str(magnitude))), snapshot, account(trade(side)), NOW)
    assert [type(d) for d in result.decisions] == ([ClosePosition] if fires else [])
    if fires:
        assert result.decisions[0].inputs["pnl_percent"] == str(percent.quantize(D("0.0001")))


@pytest.mark.parametrize(
    ("side", "direction", "price"),
    [
        ("buy", "profit", "90950"),  # a long at −99 % must not fire a profit trigger (abs() would)
        ("buy", "loss", "111000"),
        ("sell", "profit", "110000"),
        ("sell", "loss", "90000"),
    ],
)
def test_trigger_is_signed_never_abs(side, direction, price):
    result = evaluate(spec(tpsl(direction, "5")), market(price), account(trade(side)), NOW)
    assert result.decisions == ()


@pytest.mark.parametrize(
    ("side", "bucket", "fires"),
    [
        # 100 USD is quoted by the second bucket: a long is marked at its bid, a short at its ask.
        ("buy", (D(104000), D(104001)), False),  # bucket bid 104 000 → +38.46 % (the top bid would give +47.6 %)
        ("buy", (D(104200), D(104201)), True),  # +40.31 % ≥ 40
        ("sell", (D(95999), D(96000)), False),  # bucket ask 96 000 → +41.67 % (the top ask would give +63.8 %)
        ("sell", (D(95499), D(95500)), True),  # +47.12 % ≥ 45
    ],
)
def test_mark_is_the_bucket_bid_for_longs_and_ask_for_shorts(side, bucket, fires):
    ladder = (Bucket(1, 10, D(105000), D(105000.5) if side == "buy" else D(94000.5)), Bucket(11, 500, *bucket))
    snapshot = market(105000 if side == "buy" else 94000, buckets=ladder)
    trigger = "40" if side == "buy" else "45"
    result = evaluate(spec(tpsl("profit", trigger)), snapshot, account(trade(side)), NOW)
    assert bool(result.decisions) is fires


def test_fires_once_per_trade():
    config = tpsl(action="set_stoploss", price=D(101000))
    first = evaluate(spec(config), market(105000), account(trade("buy")), NOW)
    assert [type(d) for d in first.decisions] == [SetStopLoss]
    assert first.memory.trade("t1").fired
    for seconds, price in [(1, 105000), (60, 110000), (3600, 104000)]:
        at = NOW + timedelta(seconds=seconds)
        again = evaluate(spec(config, first.memory), market(price, now=at), account(trade("buy")), at)
        assert again.decisions == ()


def test_each_trade_fires_on_its_own():
    trades = (trade("buy", trade_id="a"), trade("buy", trade_id="b", entry=104000), trade("sell", trade_id="c"))
    result = evaluate(spec(tpsl("profit", "10")), market(105000), account(*trades), NOW)
    assert [d.trade_id for d in result.decisions] == ["a"]  # type: ignore[attr-defined]


def test_unmanaged_and_unchosen_trades_are_ignored():
    trades = (trade("buy", trade_id="a", managed=False), trade("buy", trade_id="b"), trade("buy", trade_id="c"))
    result = evaluate(spec(tpsl(trade_ids=("a", "c"))), market(105000), account(*trades), NOW)
    assert [d.trade_id for d in result.decisions] == ["c"]  # type: ignore[attr-defined]


def test_acts_on_a_stale_price_and_records_its_age():
    result = evaluate(spec(tpsl()), market(105000, age=3600), account(trade("buy"), kill_switch=True), NOW)
    (decision,) = result.decisions
    assert isinstance(decision, ClosePosition)
    assert decision.inputs["stale"] == "true"


# --- set_stoploss / set_takeprofit rules ----------------------------------------------------------------------------

# Long at 105 000 (bid 104 999.5, ask 105 000.5), liquidation 90 909; short at 95 000 (bid 94 999.5, ask 95 000.5),
# liquidation 111 111.
STOPLOSS_RULES = [
    ("buy", "90909", "0", "0", None),  # exactly at liquidation is allowed
    ("buy", "90908.5", "0", "0", "crosses_liquidation"),
    ("buy", "104999", "0", "0", None),
    ("buy", "104999.5", "0", "0", "wrong_side"),  # equal to the bid
    ("buy", "106000", "0", "0", "wrong_side"),
    ("buy", "104000", "0", "104000", "crosses_takeprofit"),
    ("buy", "103999.5", "0", "104000", None),
    ("buy", "100000", "100000", "0", "unchanged"),
    ("sell", "111111", "0", "0", None),
    ("sell", "111111.5", "0", "0", "crosses_liquidation"),
    ("sell", "95001", "0", "0", None),
    ("sell", "95000.5", "0", "0", "wrong_side"),  # equal to the ask
    ("sell", "94000", "0", "0", "wrong_side"),
    ("sell", "96000", "0", "96000", "crosses_takeprofit"),
    ("sell", "96000.5", "0", "96000", None),
    ("sell", "100000", "100000", "0", "unchanged"),
]


@pytest.mark.parametrize(("side", "price", "current_sl", "current_tp", "problem"), STOPLOSS_RULES)
def test_set_stoploss_follows_ln_markets_rules(side, price, current_sl, current_tp, problem):
    position = trade(side, stoploss=current_sl, takeprofit=current_tp)
    snapshot = market(105000 if side == "buy" else 95000)
    result = evaluate(spec(tpsl(action="set_stoploss", price=D(price))), snapshot, account(position), NOW)
    (decision,) = result.decisions
    if problem is None:
        assert isinstance(decision, SetStopLoss)
        assert decision.price == D(price)
        assert decision.protective
        assert result.memory.trade("t1").fired
    else:
        assert isinstance(decision, Skip)
        assert decision.code == problem
        # A refused change stays pending; "unchanged" means the trade already has it: done.
        assert result.memory.trade("t1").fired is (problem == "unchanged")


TAKEPROFIT_RULES = [
    ("buy", "105001", "0", "0", None),
    ("buy", "105000.5", "0", "0", "wrong_side"),  # equal to the ask
    ("buy", "100000", "0", "0", "wrong_side"),
    ("buy", "105500", "105500", "0", "crosses_stoploss"),
    ("buy", "120000", "0", "120000", "unchanged"),
    ("sell", "94999", "0", "0", None),
    ("sell", "94999.5", "0", "0", "wrong_side"),  # equal to the bid
    ("sell", "100000", "0", "0", "wrong_side"),
    ("sell", "94500", "94500", "0", "crosses_stoploss"),
    ("sell", "80000", "0", "80000", "unchanged"),
]


@pytest.mark.parametrize(("side", "price", "current_sl", "current_tp", "problem"), TAKEPROFIT_RULES)
def test_set_takeprofit_follows_ln_markets_rules(side, price, current_sl, current_tp, problem):
    position = trade(side, stoploss=current_sl, takeprofit=current_tp)
    snapshot = market(105000 if side == "buy" else 95000)
    result = evaluate(spec(tpsl(action="set_takeprofit", price=D(price))), snapshot, account(position), NOW)
    (decision,) = result.decisions
    if problem is None:
        assert isinstance(decision, SetTakeProfit)
        assert decision.price == D(price)
    else:
        assert isinstance(decision, Skip)
        assert decision.code == problem


def test_rules_use_the_stricter_of_bucket_and_top_quote():
    # The top-of-book bid is 104 999.5 but the bucket for 100 USD bids 104 900: a stop at 104 950 would be refused.
    ladder = (Bucket(1, 1000, D(104900), D(105100)),)
    config = tpsl(action="set_stoploss", price=D(104950))
    result = evaluate(spec(config), market(105000, buckets=ladder), account(trade("buy")), NOW)
    assert [d.code for d in result.decisions] == ["wrong_side"]  # type: ignore[attr-defined]


def test_refused_change_is_retried_while_triggered_and_skip_reported_once():
    config = tpsl("loss", "5", action="set_stoploss", price=D(96000))
    first = evaluate(spec(config), market(95000), account(trade("buy")), NOW)  # bid under the requested stop
    assert [d.code for d in first.decisions] == ["wrong_side"]  # type: ignore[attr-defined]
    at = NOW + timedelta(seconds=1)
    second = evaluate(spec(config, first.memory), market(95000, now=at), account(trade("buy")), at)
    assert second.decisions == ()
    at = NOW + timedelta(seconds=2)
    third = evaluate(spec(config, second.memory), market(94500, now=at), account(trade("buy")), at)
    assert third.decisions == ()
    at = NOW + timedelta(seconds=3)
    fourth = evaluate(spec(config, third.memory), market(99800, now=at), account(trade("buy")), at)  # −0.2 %: cleared
    assert fourth.decisions == ()
    assert fourth.memory.trade("t1").skip is None
    at = NOW + timedelta(seconds=4)
    fifth = evaluate(spec(config, fourth.memory), market(95000, now=at), account(trade("buy")), at)  # a new crossing
    assert [d.code for d in fifth.decisions] == ["wrong_side"]  # type: ignore[attr-defined]
    at = NOW + timedelta(seconds=5)
    sixth = evaluate(spec(config, fifth.memory), market(96500, now=at), account(trade("buy")), at)  # −36 %, stop valid
    assert [(type(d), d.price) for d in sixth.decisions] == [(SetStopLoss, D(96000))]  # type: ignore[attr-defined]
    assert sixth.memory.trade("t1").fired


def test_loss_trigger_sets_a_valid_stop():
    config = tpsl("loss", "5", action="set_stoploss", price=D(93000))
    result = evaluate(spec(config), market(95000), account(trade("buy")), NOW)
    assert [(type(d), d.price) for d in result.decisions] == [(SetStopLoss, D(93000))]  # type: ignore[attr-defined]


# --- break-even -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize(
    ("quantity", "entry", "opening_fee"), [(100, "100000", 100), (5000, "64321.5", 0), (1, "100000", 1)]
)
def test_breakeven_price_covers_fees_and_is_on_the_tick(side, quantity, entry, opening_fee):
    position = trade(side, quantity=quantity, entry=entry, opening_fee=opening_fee)
    price = breakeven_stoploss(position)
    assert price is not None
    assert price % TICK == 0
    opening = opening_fee or fee(quantity, D(entry))
    assert pnl(side, quantity, D(entry), price) >= opening + fee(quantity, price)
    assert (price > D(entry)) if side == "buy" else (price < D(entry))


@pytest.mark.parametrize(("side", "price", "expected"), [("buy", "105000", "100200.5"), ("sell", "95000", "99800.0")])
def test_breakeven_moves_the_stop(side, price, expected):
    result = evaluate(spec(tpsl(action="breakeven")), market(price), account(trade(side)), NOW)
    (decision,) = result.decisions
    assert isinstance(decision, SetStopLoss)
    assert decision.price == D(expected)
    assert "break-even" in decision.reason


@pytest.mark.parametrize(("side", "early", "later"), [("buy", "100150", "101000"), ("sell", "99850", "99000")])
def test_breakeven_waits_until_the_market_is_past_it(side, early, later):
    config = tpsl("profit", "0.1", action="breakeven")
    first = evaluate(spec(config), market(early), account(trade(side)), NOW)
    assert [d.code for d in first.decisions] == ["wrong_side"]  # type: ignore[attr-defined]
    assert not first.memory.trade("t1").fired
    at = NOW + timedelta(seconds=1)
    second = evaluate(spec(config, first.memory), market(later, now=at), account(trade(side)), at)
    assert [type(d) for d in second.decisions] == [SetStopLoss]


@pytest.mark.parametrize(("side", "current", "price"), [("buy", "100500", "105000"), ("sell", "99500", "95000")])
def test_breakeven_never_loosens_a_better_stop(side, current, price):
    result = evaluate(spec(tpsl(action="breakeven")), market(price), account(trade(side, stoploss=current)), NOW)
    (decision,) = result.decisions
    assert isinstance(decision, Skip)
    assert decision.code == "already_better"
    assert result.memory.trade("t1").fired


# --- trailing -------------------------------------------------------------------------------------------------------


def run(config, memory, price, seconds, side="buy", **trade_kwargs):
    at = NOW + timedelta(seconds=seconds)
    return evaluate(spec(config, memory), market(price, now=at), account(trade(side, **trade_kwargs)), at)


def test_trailing_long_moves_only_on_improvement():
    config = tpsl("profit", "10", "trailing_stoploss", trailing_distance=D(500))
    steps = [
        ("105000", "104499.5"),  # fires: bid 104 999.5 − 500
        ("105000", None),  # same best
        ("104800", None),  # price falls: never loosens
        ("105000.5", "104500.0"),  # one tick better
        ("106000", "105499.5"),
        ("103000", None),  # PnL still counts no more: trailing keeps running after the first fire
        ("106000", None),
    ]
    memory = Memory()
    for seconds, (price, expected) in enumerate(steps):
        result = run(config, memory, price, seconds)
        proposed = [d.price for d in result.decisions if isinstance(d, SetStopLoss)]
        assert proposed == ([D(expected)] if expected else []), (price, result.decisions)
        memory = result.memory
    assert memory.trade("t1").trail_best == D("105999.5")
    assert memory.trade("t1").trail_stoploss == D("105499.5")


def test_trailing_short_mirrors():
    config = tpsl("profit", "10", "trailing_stoploss", trailing_distance=D("250.2"))
    memory = Memory()
    proposals = []
    for seconds, price in enumerate(["95000", "95100", "94900", "94900", "94899.5"]):
        result = run(config, memory, price, seconds, side="sell")
        proposals.append([d.price for d in result.decisions])
        memory = result.memory
    # ask + 250.2 rounded up: 95 000.5 → 95 251.0; 94 900.5 → 95 151.0; 94 900 → 95 150.5
    assert proposals == [[D("95251.0")], [], [D("95151.0")], [], [D("95150.5")]]


def test_trailing_does_not_loosen_an_existing_tighter_stop():
    config = tpsl("profit", "10", "trailing_stoploss", trailing_distance=D(500))
    first = run(config, Memory(), "105000", 0, stoploss="104800")
    assert [d.code for d in first.decisions] == ["already_tighter"]
    assert first.memory.trade("t1").fired
    second = run(config, first.memory, "105200", 1, stoploss="104800")
    assert second.decisions == ()
    third = run(config, second.memory, "105400", 2, stoploss="104800")
    assert [d.price for d in third.decisions] == [D("104899.5")]


def test_trailing_stop_that_would_cross_liquidation_is_skipped_then_follows():
    config = tpsl("profit", "10", "trailing_stoploss", trailing_distance=D(20000))
    first = run(config, Memory(), "105000", 0)
    assert [d.code for d in first.decisions] == ["crosses_liquidation"]
    second = run(config, first.memory, "106000", 1)
    assert second.decisions == ()  # same reason: reported once
    third = run(config, second.memory, "112000", 2)
    assert [d.price for d in third.decisions] == [D("91999.5")]


def test_trailing_compares_with_its_last_proposal_not_only_the_exchange():
    # The exchange has not applied the last proposal yet (stoploss still 0): do not resend the same value.
    config = tpsl("profit", "10", "trailing_stoploss", trailing_distance=D(500))
    memory = Memory(trades={"t1": TradeMemory(fired=True, trail_best=D("105999.5"), trail_stoploss=D("105499.5"))})
    assert run(config, memory, "106000", 1).decisions == ()


@pytest.mark.parametrize("action", ["close", "set_takeprofit", "set_stoploss", "breakeven", "trailing_stoploss"])
def test_no_action_below_the_trigger(action):
    extra: dict[str, object] = {}
    if action in ("set_takeprofit", "set_stoploss"):
        extra["price"] = D(110000) if action == "set_takeprofit" else D(95000)
    if action == "trailing_stoploss":
        extra["trailing_distance"] = D(100)
    result = evaluate(spec(tpsl("profit", "50", action, **extra)), market(102000), account(trade("buy")), NOW)
    assert result.decisions == ()
    assert result.completed is False
