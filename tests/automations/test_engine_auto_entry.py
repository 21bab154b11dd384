"""Auto Entry: triggers, freshness, kill switch and breaker, balance, exits, completion and repeats."""

from __future__ import annotations

from datetime import timedelta

import pytest

from automations.engine import (
    AutoEntryConfig,
    ClosePosition,
    MarginGuardConfig,
    Memory,
    OpenPosition,
    Skip,
    evaluate,
    stoploss_from_percent,
    takeprofit_from_percent,
)
from lnmarkets.maths import fee, initial_liquidation_price, margin_from_quantity

from .builders import NOW, D, account, market, spec, trade


def entry(trigger: str = "price_below", price: str | None = "100000", **kwargs: object) -> AutoEntryConfig:
    values: dict[str, object] = {"side": "buy", "leverage": D(10), "quantity": 100, "margin": None}
    values.update(kwargs)
    trigger_price = D(price) if price is not None and trigger != "immediate" else None
    return AutoEntryConfig(trigger=trigger, trigger_price=trigger_price, **values)  # type: ignore[arg-type]


def at(seconds: float):
    return NOW + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("trigger", "last", "fires"),
    [
        ("immediate", "123456", True),
        ("price_below", "99999.5", True),
        ("price_below", "100000", True),  # exactly at the trigger
        ("price_below", "100000.5", False),
        ("price_above", "100000.5", True),
        ("price_above", "100000", True),  # exactly at the trigger
        ("price_above", "99999.5", False),
    ],
)
def test_price_triggers_use_the_last_price(trigger, last, fires):
    side = "buy" if trigger != "price_above" else "sell"
    result = evaluate(spec(entry(trigger, side=side)), market(last), account(), NOW)
    assert [type(d) for d in result.decisions] == ([OpenPosition] if fires else [])
    if fires:
        decision = result.decisions[0]
        assert decision.protective is False
        assert decision.inputs["last_price"] == last
        assert result.completed


@pytest.mark.parametrize(("age", "fires"), [(0, True), (14.999, True), (15, True), (15.001, False), (600, False)])
def test_never_enters_on_a_stale_price(age, fires):
    result = evaluate(spec(entry("immediate")), market(100000, age=age), account(), NOW)
    (decision,) = result.decisions
    if fires:
        assert isinstance(decision, OpenPosition)
    else:
        assert isinstance(decision, Skip)
        assert decision.code == "stale_price"
        assert decision.protective is False
        assert result.memory.fires == 0
        assert not result.completed


def test_custom_freshness_limit():
    result = evaluate(spec(entry("immediate"), max_age=5), market(100000, age=6), account(), NOW)
    assert [d.code for d in result.decisions] == ["stale_price"]  # type: ignore[attr-defined]


def test_stale_price_blocks_entries_but_not_protection():
    stale = market(95000, age=60)
    state = account(trade("buy"))
    guarded = evaluate(spec(MarginGuardConfig("liquidation_distance", D(10), "close")), stale, state, NOW)
    entered = evaluate(spec(entry("immediate")), stale, state, NOW)
    assert [type(d) for d in guarded.decisions] == [ClosePosition]
    assert [d.code for d in entered.decisions] == ["stale_price"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kill_switch", "halted", "code"),
    [(True, False, "kill_switch"), (False, True, "entries_halted"), (True, True, "kill_switch")],
)
def test_kill_switch_and_breaker_block_entries(kill_switch, halted, code):
    result = evaluate(spec(entry("immediate")), market(100000), account(kill_switch=kill_switch, halted=halted), NOW)
    assert [d.code for d in result.decisions] == [code]  # type: ignore[attr-defined]
    assert result.memory.fires == 0


def test_blocked_entry_is_reported_once_then_fires_when_lifted():
    config = entry("immediate")
    first = evaluate(spec(config), market(100000), account(kill_switch=True), NOW)
    assert len(first.decisions) == 1
    second = evaluate(spec(config, first.memory), market(100000, now=at(1)), account(kill_switch=True), at(1))
    assert second.decisions == ()
    third = evaluate(spec(config, second.memory), market(100000, now=at(2)), account(), at(2))
    assert [type(d) for d in third.decisions] == [OpenPosition]


def _cost(side, fill, quantity=100, leverage=10):
    leverage = D(leverage)
    margin = margin_from_quantity(quantity, fill, leverage)
    liquidation = initial_liquidation_price(side, quantity, fill, leverage)
    return margin + fee(quantity, fill) + fee(quantity, liquidation)


@pytest.mark.parametrize(("side", "fill"), [("buy", D("100000.5")), ("sell", D("99999.5"))])
@pytest.mark.parametrize(("delta", "fires"), [(0, True), (1, True), (-1, False)])
def test_balance_must_cover_margin_and_fee_reserves(side, fill, delta, fires):
    need = _cost(side, fill)
    result = evaluate(spec(entry("immediate", side=side)), market(100000), account(balance=need + delta), NOW)
    (decision,) = result.decisions
    if fires:
        assert isinstance(decision, OpenPosition)
        assert decision.inputs["margin_needed"] == str(margin_from_quantity(100, fill, D(10)))
    else:
        assert isinstance(decision, Skip)
        assert decision.code == "insufficient_balance"


@pytest.mark.parametrize(
    ("margin", "leverage", "outcome"),
    [(10000, "10", "open"), (5, "1", "too_small"), (600_000_000, "100", "too_large"), (2_000_000, "2", "insufficient")],
)
def test_margin_sized_entries(margin, leverage, outcome):
    config = entry("immediate", quantity=None, margin=margin, leverage=D(leverage))
    result = evaluate(spec(config), market(100000), account(balance=1_000_000), NOW)
    (decision,) = result.decisions
    if outcome == "open":
        assert isinstance(decision, OpenPosition)
        assert (decision.margin, decision.quantity) == (margin, None)
        assert decision.inputs["quantity"] == "100"
    else:
        assert isinstance(decision, Skip)
        assert decision.code == {"too_small": "too_small", "too_large": "too_large"}.get(
            outcome, "insufficient_balance"
        )


@pytest.mark.parametrize(
    ("side", "exits", "code"),
    [
        ("buy", {"stoploss": D(95000), "takeprofit": D(110000)}, None),
        ("buy", {"stoploss": D(90000)}, "invalid_stoploss"),  # under the ~90 909.5 liquidation at 10x
        ("buy", {"stoploss_percent": D(5), "takeprofit_percent": D(5)}, None),
        ("buy", {"stoploss_percent": D(20)}, "invalid_stoploss"),  # 20 % at 10x is past liquidation
        ("sell", {"stoploss": D(105000), "takeprofit": D(90000)}, None),
        ("sell", {"stoploss": D(112000)}, "invalid_stoploss"),  # above the ~111 110.5 liquidation
        ("sell", {"stoploss_percent": D("9.5")}, None),
        ("sell", {"stoploss_percent": D(12)}, "invalid_stoploss"),
    ],
)
def test_entry_exits_are_checked_against_the_estimated_fill(side, exits, code):
    config = entry("immediate", side=side, **exits)
    result = evaluate(spec(config), market(100000), account(), NOW)
    (decision,) = result.decisions
    if code is None:
        assert isinstance(decision, OpenPosition)
        assert decision.stoploss == exits.get("stoploss")
        assert decision.stoploss_percent == exits.get("stoploss_percent")
        assert decision.takeprofit == exits.get("takeprofit")
        assert decision.takeprofit_percent == exits.get("takeprofit_percent")
    else:
        assert isinstance(decision, Skip)
        assert decision.code == code


def test_absolute_exit_on_the_wrong_side_of_the_fill_is_refused():
    # Trigger validation keeps the exits on the right side of the trigger price; the fill can still be elsewhere.
    config = entry("price_above", "90000", side="buy", takeprofit=D(95000))
    result = evaluate(spec(config), market(100000), account(), NOW)
    assert [d.code for d in result.decisions] == ["invalid_takeprofit"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("side", "fill", "percent", "stoploss", "takeprofit"),
    [
        ("buy", "100000.5", "5", "95000.0", "105001.0"),
        ("sell", "99999.5", "5", "104999.5", "94999.5"),
        ("buy", "64000", "2.5", "62400.0", "65600.0"),
    ],
)
def test_percent_exits_round_away_from_the_fill(side, fill, percent, stoploss, takeprofit):
    assert stoploss_from_percent(side, D(fill), D(percent)) == D(stoploss)
    assert takeprofit_from_percent(side, D(fill), D(percent)) == D(takeprofit)


def test_single_fire_completes():
    config = entry("price_below")
    first = evaluate(spec(config), market(99000), account(), NOW)
    assert first.completed
    assert (first.memory.fires, first.memory.last_fire_at) == (1, NOW)
    later = evaluate(spec(config, first.memory), market(99000, now=at(3600)), account(), at(3600))
    assert later.decisions == ()
    assert later.completed


def test_repeats_rearm_after_cooldown_and_leaving_the_zone():
    config = entry("price_below", repeat_count=2, repeat_cooldown_seconds=60)
    memory = Memory()
    # (seconds, last price, fires?)
    script = [
        (0, "99000", True),
        (1, "99000", False),  # same tick region: not re-armed
        (61, "99000", False),  # cooldown passed, but the price never left the zone
        (70, "100500", False),  # leaves the zone: re-armed
        (80, "99500", True),  # back in the zone after the cooldown
        (90, "101000", False),
        (100, "99000", False),  # re-armed but within the 60 s cooldown
        (139, "99000", False),
        (140, "99000", True),  # third and last fire
        (500, "101000", False),
        (600, "99000", False),
    ]
    completed = []
    for seconds, price, fires in script:
        result = evaluate(spec(config, memory), market(price, now=at(seconds)), account(), at(seconds))
        assert [type(d) for d in result.decisions] == ([OpenPosition] if fires else []), seconds
        memory = result.memory
        completed.append(result.completed)
    assert memory.fires == 3
    assert completed[-3:] == [True, True, True]
    assert not any(completed[:8])


def test_stale_prices_do_not_rearm():
    config = entry("price_below", repeat_count=1)
    first = evaluate(spec(config), market(99000), account(), NOW)
    stale_out = evaluate(spec(config, first.memory), market(101000, age=60, now=at(100)), account(), at(100))
    assert stale_out.memory.armed is False
    back = evaluate(spec(config, stale_out.memory), market(99000, now=at(101)), account(), at(101))
    assert back.decisions == ()


def test_immediate_repeats_after_each_cooldown():
    config = entry("immediate", repeat_count=1, repeat_cooldown_seconds=30)
    first = evaluate(spec(config), market(100000), account(), NOW)
    assert not first.completed
    early = evaluate(spec(config, first.memory), market(100000, now=at(29)), account(), at(29))
    assert early.decisions == ()
    second = evaluate(spec(config, early.memory), market(100000, now=at(30)), account(), at(30))
    assert [type(d) for d in second.decisions] == [OpenPosition]
    assert second.completed


def test_zero_cooldown_repeat_never_fires_twice_at_the_same_now():
    config = entry("immediate", repeat_count=5)
    first = evaluate(spec(config), market(100000), account(), NOW)
    assert evaluate(spec(config, first.memory), market(100000), account(), NOW).decisions == ()


def test_skips_do_not_use_fires():
    config = entry("immediate")
    skipped = evaluate(spec(config), market(100000), account(balance=0), NOW)
    assert skipped.memory.fires == 0
    assert not skipped.completed
    assert skipped.memory.skip == "insufficient_balance"


def test_entry_ignores_running_trades_and_their_management():
    result = evaluate(spec(entry("immediate")), market(100000), account(trade("buy", managed=False)), NOW)
    assert [type(d) for d in result.decisions] == [OpenPosition]
