"""Margin Guard: triggers (inclusive thresholds, worse-price mark), actions, caps, once-per-crossing and cooldown."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from automations.engine import (
    MEMORY_RETENTION,
    AddMargin,
    ClosePosition,
    MarginGuardConfig,
    Memory,
    ReducePosition,
    Skip,
    TradeMemory,
    evaluate,
    margin_to_restore_distance,
)
from automations.specs import Bucket
from lnmarkets.maths import liquidation_price

from .builders import NOW, D, account, market, spec, trade


def guard(trigger: str = "liquidation_distance", threshold: str = "10", action: str = "close", **kwargs: object):
    return MarginGuardConfig(trigger, D(threshold), action, **kwargs)  # type: ignore[arg-type]


# Distance = (mark − 90 909) / mark for the long, (111 111 − mark) / mark for the short: exactly 10 % at 101 010.
AT_10_PERCENT = {
    "buy": {"last": "101010", "bid": "101010", "ask": "101010.5"},
    "sell": {"last": "101010", "bid": "101009.5", "ask": "101010"},
}


@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize(
    ("threshold", "fires"),
    [("10", True), ("10.01", True), ("9.99", False), ("1", False), ("99", True)],
    ids=["exactly-at", "just-above", "just-below", "far-below", "far-above"],
)
def test_distance_trigger_is_inclusive(side, threshold, fires):
    quote = AT_10_PERCENT[side]
    result = evaluate(
        spec(guard(threshold=threshold)),
        market(quote["last"], bid=quote["bid"], ask=quote["ask"]),
        account(trade(side)),
        NOW,
    )
    assert [type(d) for d in result.decisions] == ([ClosePosition] if fires else [])
    if fires:
        assert result.decisions[0].inputs["distance"] == "10.0000"


@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize(
    ("margin", "threshold", "fires"),
    [(9900, "1", True), (9901, "1", False), (9899, "1", True), (9900, "1.0001", False), (9900, "0.9999", True)],
    ids=["exactly-at", "ratio-just-below", "ratio-just-above", "threshold-above", "threshold-below"],
)
def test_margin_ratio_trigger_is_inclusive(side, margin, threshold, fires):
    # At the entry price the PnL is 0, so the ratio is exactly 100 / (100 + margin) × 100.
    position = trade(side, margin=margin, maintenance_margin=100)
    result = evaluate(
        spec(guard("margin_ratio", threshold)),
        market(100000, bid=100000, ask=100000),
        account(position),
        NOW,
    )
    assert [type(d) for d in result.decisions] == ([ClosePosition] if fires else [])


@pytest.mark.parametrize(
    ("side", "quote", "fires"),
    [
        # The long is marked at min(last, bid): a last price lower than the bid counts.
        ("buy", {"last": "101000", "bid": "101500", "ask": "101500.5"}, True),
        ("buy", {"last": "101500", "bid": "101500", "ask": "101500.5"}, False),
        # The short is marked at max(last, ask): a last price higher than the ask counts.
        ("sell", {"last": "101020", "bid": "100500", "ask": "100500.5"}, True),
        ("sell", {"last": "100500", "bid": "100499.5", "ask": "100500.5"}, False),
    ],
)
def test_guard_marks_at_the_worse_of_last_and_quote(side, quote, fires):
    result = evaluate(
        spec(guard()), market(quote["last"], bid=quote["bid"], ask=quote["ask"]), account(trade(side)), NOW
    )
    assert bool(result.decisions) is fires


@pytest.mark.parametrize(("side", "bucket"), [("buy", (D(101000), D(101600))), ("sell", (D(100400), D(101020)))])
def test_guard_uses_the_size_bucket_of_the_trade(side, bucket):
    # Top of book is safe; only the bucket that holds 100 USD is past the threshold.
    ladder = (Bucket(1, 50, D(101500), D(101500.5)), Bucket(51, 1000, *bucket))
    snapshot = market("101500", bid="101499.5", ask="100500.5" if side == "sell" else "101500.5", buckets=ladder)
    if side == "sell":
        snapshot = market("100500", bid="100499.5", ask="100500.5", buckets=ladder)
    result = evaluate(spec(guard()), snapshot, account(trade(side)), NOW)
    assert [type(d) for d in result.decisions] == [ClosePosition]


def test_trade_past_liquidation_has_negative_distance_and_triggers():
    result = evaluate(spec(guard(threshold="1")), market(90000, bid=90000), account(trade("buy")), NOW)
    assert result.decisions[0].inputs["distance"].startswith("-")


def test_close_decision_is_protective_and_carries_inputs():
    result = evaluate(spec(guard()), market(101000), account(trade("buy")), NOW)
    (decision,) = result.decisions
    assert isinstance(decision, ClosePosition)
    assert decision.protective
    assert decision.trade_id == "t1"
    for key in ("mark", "bid", "ask", "margin_ratio", "distance", "price_age_s", "stale", "liquidation"):
        assert key in decision.inputs
    assert all(isinstance(v, str) for v in decision.inputs.values())


def test_guard_acts_on_a_stale_price_and_records_its_age():
    result = evaluate(spec(guard()), market(101000, age=120), account(trade("buy")), NOW)
    (decision,) = result.decisions
    assert isinstance(decision, ClosePosition)
    assert decision.inputs["stale"] == "true"
    assert decision.inputs["price_age_s"] == "120.000"


@pytest.mark.parametrize(("kill_switch", "halted"), [(True, False), (False, True), (True, True)])
def test_kill_switch_and_breaker_do_not_block_protection(kill_switch, halted):
    result = evaluate(spec(guard()), market(101000), account(trade("buy"), kill_switch=kill_switch, halted=halted), NOW)
    assert [type(d) for d in result.decisions] == [ClosePosition]


def test_unmanaged_trades_are_never_touched():
    result = evaluate(spec(guard()), market(95000), account(trade("buy", managed=False)), NOW)
    assert result.decisions == ()
    assert result.memory.trades == {}


def test_trade_ids_restrict_the_guard():
    trades = (trade("buy", trade_id="a"), trade("buy", trade_id="b"), trade("buy", trade_id="c", managed=False))
    result = evaluate(spec(guard(trade_ids=("b", "c"))), market(95000), account(*trades), NOW)
    assert [d.trade_id for d in result.decisions] == ["b"]  # type: ignore[attr-defined]


def test_every_managed_trade_when_no_ids_are_chosen():
    trades = (trade("buy", trade_id="a"), trade("sell", trade_id="b"), trade("buy", trade_id="c"))
    result = evaluate(spec(guard()), market(95000), account(*trades), NOW)
    assert [d.trade_id for d in result.decisions] == ["a", "c"]  # type: ignore[attr-defined]


# --- reduce ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "percent", "close_quantity", "reopen_quantity"),
    [
        (100, "30", 30, 70),
        (100, "33.3", 34, 66),  # the closed part rounds up: at least P % goes
        (100, "0.5", 1, 99),
        (3, "50", 2, 1),
        (10, "99.99", 10, 0),  # nothing would be left: a full close
        (1, "50", 1, 0),
        (2, "50", 1, 1),
    ],
)
def test_reduce_quantities(quantity, percent, close_quantity, reopen_quantity):
    position = trade("buy", quantity=quantity)
    result = evaluate(spec(guard(action="reduce", reduce_percent=D(percent))), market(95000), account(position), NOW)
    (decision,) = result.decisions
    if reopen_quantity == 0:
        assert isinstance(decision, ClosePosition)
        assert "closing the whole trade" in decision.reason
    else:
        assert isinstance(decision, ReducePosition)
        assert (decision.close_quantity, decision.reopen_quantity) == (close_quantity, reopen_quantity)
        assert decision.close_quantity + decision.reopen_quantity == quantity
        assert decision.side == "buy"
        assert decision.leverage == D(10)
        assert decision.protective


@pytest.mark.parametrize(
    ("side", "stoploss", "takeprofit", "kept_sl", "kept_tp"),
    [
        ("buy", "93000", "110000", True, True),
        ("buy", "91000", "0", True, False),
        ("buy", "0", "94000", False, False),  # TP now below the ask: refused for the reopen
        ("sell", "99000", "80000", True, True),
        ("sell", "0", "99000", False, False),  # TP now above the bid of a short: refused
    ],
)
def test_reduce_keeps_valid_exits_and_drops_refused_ones(side, stoploss, takeprofit, kept_sl, kept_tp):
    price = 95000 if side == "buy" else 98500
    position = trade(side, stoploss=stoploss, takeprofit=takeprofit)
    result = evaluate(
        spec(guard(threshold="99", action="reduce", reduce_percent=D(50))), market(price), account(position), NOW
    )
    (decision,) = result.decisions
    assert isinstance(decision, ReducePosition)
    assert (decision.stoploss is not None) is kept_sl
    assert (decision.takeprofit is not None) is kept_tp
    if D(stoploss) and not kept_sl:
        assert "stoploss_dropped" in decision.inputs


def test_reduce_drops_a_stoploss_under_the_reopened_liquidation():
    # Margin was added (liquidation 80 000), but the reopen at the 10x leverage and 95 000.5 puts the liquidation
    # near 86 364: the old stop at 86 000 would be refused.
    position = trade("buy", stoploss="86000", liquidation="80000", margin=20000, leverage=10)
    result = evaluate(
        spec(guard(threshold="99", action="reduce", reduce_percent=D(50))), market(95000), account(position), NOW
    )
    (decision,) = result.decisions
    assert isinstance(decision, ReducePosition)
    assert decision.stoploss is None
    assert decision.leverage == D(10)
    assert decision.inputs["stoploss_dropped"].startswith("86000")


# --- add margin -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "balance", "cap", "already", "expected", "limited_by"),
    [
        (5000, 1_000_000, None, 0, 5000, "nothing"),
        (5000, 3000, None, 0, 3000, "free balance"),
        (5000, 1_000_000, 8000, 4000, 4000, "per-trade cap"),
        (5000, 1_000_000, 8000, 3000, 5000, "nothing"),  # exactly fits the cap
        (5000, 5000, None, 0, 5000, "nothing"),  # exactly the balance
        (200_000, 1_000_000, None, 0, 90_000, "leverage ≥ 1"),  # 100 USD at 100 000 → at most 100 000 sats
    ],
)
def test_fixed_add_margin_limits(amount, balance, cap, already, expected, limited_by):
    config = guard(action="add_margin", add_margin_mode="fixed", add_margin_amount=amount, max_added_per_trade=cap)
    memory = Memory(trades={"t1": TradeMemory(added_margin=already)})
    result = evaluate(spec(config, memory), market(95000), account(trade("buy"), balance=balance), NOW)
    (decision,) = result.decisions
    assert isinstance(decision, AddMargin)
    assert decision.amount == expected
    assert decision.inputs["limited_by"] == limited_by
    assert result.memory.trade("t1").added_margin == already + expected


@pytest.mark.parametrize(
    ("balance", "cap", "already", "margin", "code"),
    [
        (1_000_000, 8000, 8000, None, "cap_reached"),
        (1_000_000, 8000, 9000, None, "cap_reached"),
        (0, None, 0, None, "insufficient_balance"),
        (-50, None, 0, None, "insufficient_balance"),
        (1_000_000, None, 0, 100_000, "leverage_floor"),
    ],
)
def test_add_margin_skips_when_nothing_can_be_added(balance, cap, already, margin, code):
    config = guard(action="add_margin", add_margin_mode="fixed", add_margin_amount=5000, max_added_per_trade=cap)
    memory = Memory(trades={"t1": TradeMemory(added_margin=already)})
    position = trade("buy", margin=margin) if margin else trade("buy")
    result = evaluate(spec(config, memory), market(95000), account(position, balance=balance), NOW)
    (decision,) = result.decisions
    assert isinstance(decision, Skip)
    assert decision.code == code
    assert decision.trade_id == "t1"
    assert decision.protective


def test_free_balance_is_shared_between_trades_of_one_evaluation():
    config = guard(action="add_margin", add_margin_mode="fixed", add_margin_amount=6000)
    trades = (trade("buy", trade_id="a"), trade("buy", trade_id="b"), trade("buy", trade_id="c"))
    result = evaluate(spec(config), market(95000), account(*trades, balance=10_000), NOW)
    assert [(type(d).__name__, getattr(d, "amount", None)) for d in result.decisions] == [
        ("AddMargin", 6000),
        ("AddMargin", 4000),
        ("Skip", None),
    ]


@pytest.mark.parametrize("side", ["buy", "sell"])
@pytest.mark.parametrize("target", ["12", "15", "25.5", "40"])
@pytest.mark.parametrize("price", ["95000", "98000", "101000.5"])
def test_restore_distance_adds_the_least_margin_that_reaches_the_target(side, target, price):
    position = trade(side, quantity=250, leverage=20)
    mark = D(price)
    extra = margin_to_restore_distance(position, mark, D(target))
    assert extra is not None

    def distance(margin: int) -> D:
        liq = liquidation_price(side, 250, position.entry_price, margin)
        return (mark - liq if side == "buy" else liq - mark) * 100 / mark

    assert distance(position.margin + extra) >= D(target)
    if extra > 0:
        # One sat less does not reach the tick that guarantees the target (minimal up to the 0.5 tick rounding).
        goal_miss = distance(position.margin + extra - 1)
        assert goal_miss < D(target) + D("0.002")


def test_restore_distance_decision_reaches_target_after_the_addition():
    config = guard(threshold="8", action="add_margin", add_margin_mode="restore_distance", target_distance=D(15))
    position = trade("buy")
    result = evaluate(spec(config), market(98000, bid=98000), account(position), NOW)
    (decision,) = result.decisions
    assert isinstance(decision, AddMargin)
    liq = liquidation_price("buy", 100, position.entry_price, position.margin + decision.amount)
    assert (D(98000) - liq) * 100 / D(98000) >= 15


def test_restore_distance_skips_when_already_at_target():
    # Margin ratio trigger fires, but the distance is already beyond the restore target.
    config = guard("margin_ratio", "1", action="add_margin", add_margin_mode="restore_distance", target_distance=D(5))
    result = evaluate(spec(config), market(100000), account(trade("buy", maintenance_margin=200)), NOW)
    (decision,) = result.decisions
    assert isinstance(decision, Skip)
    assert decision.code == "at_target"


# --- once per crossing, cooldown, skip dedup --------------------------------------------------------------------------


def test_once_per_crossing_with_cooldown():
    config = guard(cooldown_seconds=60)
    position = account(trade("buy"))
    first = evaluate(spec(config), market(95000), position, NOW)
    assert len(first.decisions) == 1
    memory = first.memory
    assert memory.trade("t1").last_action_at == NOW
    assert memory.trade("t1").crossed
    for seconds, expected in [(0, 0), (1, 0), (59, 0), (60, 1), (61, 1)]:
        at = NOW + timedelta(seconds=seconds)
        again = evaluate(spec(config, memory), market(95000, now=at), position, at)
        assert len(again.decisions) == expected, seconds


def test_clearing_and_recrossing_within_the_cooldown_does_not_act():
    config = guard(cooldown_seconds=60)
    position = account(trade("buy"))
    memory = evaluate(spec(config), market(95000), position, NOW).memory
    at = NOW + timedelta(seconds=10)
    cleared = evaluate(spec(config, memory), market(105000, now=at), position, at)
    assert cleared.decisions == ()
    assert not cleared.memory.trade("t1").crossed
    at = NOW + timedelta(seconds=20)
    recrossed = evaluate(spec(config, cleared.memory), market(95000, now=at), position, at)
    assert recrossed.decisions == ()
    at = NOW + timedelta(seconds=60)
    assert len(evaluate(spec(config, recrossed.memory), market(95000, now=at), position, at).decisions) == 1


def test_zero_cooldown_still_never_decides_twice_at_the_same_now():
    config = guard(cooldown_seconds=0)
    position = account(trade("buy"))
    first = evaluate(spec(config), market(95000), position, NOW)
    assert evaluate(spec(config, first.memory), market(95000), position, NOW).decisions == ()
    later = NOW + timedelta(milliseconds=1)
    assert len(evaluate(spec(config, first.memory), market(95000, now=later), position, later).decisions) == 1


def test_a_lasting_skip_is_reported_once_per_crossing():
    config = guard(action="add_margin", add_margin_mode="fixed", add_margin_amount=5000)
    broke = account(trade("buy"), balance=0)
    first = evaluate(spec(config), market(95000), broke, NOW)
    assert [d.code for d in first.decisions] == ["insufficient_balance"]  # type: ignore[attr-defined]
    at = NOW + timedelta(seconds=5)
    second = evaluate(spec(config, first.memory), market(95000, now=at), broke, at)
    assert second.decisions == ()
    at = NOW + timedelta(seconds=10)
    cleared = evaluate(spec(config, second.memory), market(105000, now=at), broke, at)
    assert cleared.memory.trade("t1").skip is None
    at = NOW + timedelta(seconds=15)
    again = evaluate(spec(config, cleared.memory), market(95000, now=at), broke, at)
    assert [d.code for d in again.decisions] == ["insufficient_balance"]  # type: ignore[attr-defined]


def test_balance_arriving_after_a_skip_lets_the_guard_act():
    config = guard(action="add_margin", add_margin_mode="fixed", add_margin_amount=5000)
    first = evaluate(spec(config), market(95000), account(trade("buy"), balance=0), NOW)
    at = NOW + timedelta(seconds=1)
    funded = evaluate(spec(config, first.memory), market(95000, now=at), account(trade("buy")), at)
    assert [type(d) for d in funded.decisions] == [AddMargin]


def test_still_triggered_after_the_cooldown_tops_up_within_the_cap():
    config = guard(
        action="add_margin",
        add_margin_mode="fixed",
        add_margin_amount=5000,
        max_added_per_trade=7000,
        cooldown_seconds=30,
    )
    position = account(trade("buy"))
    first = evaluate(spec(config), market(95000), position, NOW)
    at = NOW + timedelta(seconds=30)
    second = evaluate(spec(config, first.memory), market(95000, now=at), position, at)
    assert [d.amount for d in second.decisions] == [2000]  # type: ignore[attr-defined]
    at = NOW + timedelta(seconds=60)
    third = evaluate(spec(config, second.memory), market(95000, now=at), position, at)
    assert [d.code for d in third.decisions] == ["cap_reached"]  # type: ignore[attr-defined]


def test_memory_is_unchanged_object_when_nothing_happens():
    memory = Memory()
    result = evaluate(spec(guard(), memory), market(105000), account(trade("buy")), NOW)
    assert result.memory is memory


def test_memory_of_closed_trades_is_pruned_after_retention():
    memory = Memory(
        trades={
            "gone-quiet": TradeMemory(crossed=True),
            "gone-recent": TradeMemory(last_action_at=NOW - timedelta(hours=1), added_margin=10),
            "gone-old": TradeMemory(last_action_at=NOW - MEMORY_RETENTION - timedelta(seconds=1)),
            "t1": TradeMemory(last_action_at=NOW - MEMORY_RETENTION * 3),
        }
    )
    result = evaluate(spec(guard(), memory), market(105000), account(trade("buy")), NOW)
    assert set(result.memory.trades) == {"gone-recent", "t1"}


def test_carry_over_keeps_the_cooldown_on_a_reopened_trade():
    config = guard(threshold="99", action="reduce", reduce_percent=D(50))
    first = evaluate(spec(config), market(95000), account(trade("buy", trade_id="old")), NOW)
    assert isinstance(first.decisions[0], ReducePosition)
    carried = first.memory.carry_over("old", "new")
    assert "old" not in carried.trades
    at = NOW + timedelta(seconds=5)
    reopened = account(trade("buy", trade_id="new", quantity=50, entry=95000))
    assert evaluate(spec(config, carried), market(95000, now=at), reopened, at).decisions == ()
    assert carried.carry_over("absent", "x") is carried


def test_margin_guard_never_completes():
    assert evaluate(spec(guard()), market(95000), account(trade("buy")), NOW).completed is False


def test_does_not_mutate_the_given_memory():
    memory = Memory(trades={"other": TradeMemory(last_action_at=NOW)})
    snapshot = dict(memory.trades)
    result = evaluate(spec(guard(), memory), market(95000), account(trade("buy"), trade("buy", trade_id="other")), NOW)
    assert dict(memory.trades) == snapshot
    assert result.memory is not memory
    assert replace(result.memory.trade("other"), crossed=False) == memory.trade("other")  # in cooldown: no action


def test_an_addition_in_its_cooldown_is_held_back_from_the_free_balance():
    # The account still shows 10 000 sats free: the 6 000 proposed for "a" a moment ago may not be reflected yet.
    config = guard(action="add_margin", add_margin_mode="fixed", add_margin_amount=6000, cooldown_seconds=60)
    first = evaluate(spec(config), market(95000), account(trade("buy", trade_id="a"), balance=10_000), NOW)
    assert first.memory.trade("a").pending_margin == 6000
    later = NOW + timedelta(seconds=10)
    both = account(trade("buy", trade_id="a"), trade("buy", trade_id="b"), balance=10_000)
    second = evaluate(spec(config, first.memory), market(95000, now=later), both, later)
    assert [d.amount for d in second.decisions] == [4000]  # type: ignore[attr-defined]
    after = NOW + timedelta(seconds=60)
    third = evaluate(spec(config, first.memory), market(95000, now=after), both, after)
    assert [d.amount for d in third.decisions] == [6000, 4000]  # type: ignore[attr-defined]
