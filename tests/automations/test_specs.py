"""Config, state and memory validation: each bad field raises SpecError naming it, with a readable message."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from automations.engine import (
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
)

from .builders import NOW, D, market, trade

GUARD: dict[str, Any] = {"trigger": "margin_ratio", "threshold": D(80), "action": "close"}
ADD_FIXED = {**GUARD, "action": "add_margin", "add_margin_mode": "fixed", "add_margin_amount": 1000}
ADD_RESTORE = {
    "trigger": "liquidation_distance",
    "threshold": D(10),
    "action": "add_margin",
    "add_margin_mode": "restore_distance",
    "target_distance": D(20),
}
TPSL = {"direction": "profit", "trigger_percent": D(10), "action": "close"}
ENTRY = {"side": "buy", "leverage": D(10), "quantity": 100, "margin": None, "trigger": "immediate"}
PRICED = {**ENTRY, "trigger": "price_below", "trigger_price": D(100000)}


@pytest.mark.parametrize(
    ("cls", "base", "changes", "field"),
    [
        (MarginGuardConfig, GUARD, {"trigger": "pnl"}, "trigger"),
        (MarginGuardConfig, GUARD, {"threshold": D(0)}, "threshold"),
        (MarginGuardConfig, GUARD, {"threshold": D(100)}, "threshold"),
        (MarginGuardConfig, GUARD, {"threshold": 80.0}, "threshold"),
        (MarginGuardConfig, GUARD, {"threshold": D("NaN")}, "threshold"),
        (MarginGuardConfig, GUARD, {"action": "liquidate"}, "action"),
        (MarginGuardConfig, GUARD, {"action": "reduce"}, "reduce_percent"),
        (MarginGuardConfig, GUARD, {"action": "reduce", "reduce_percent": D(100)}, "reduce_percent"),
        (MarginGuardConfig, GUARD, {"action": "reduce", "reduce_percent": D(0)}, "reduce_percent"),
        (MarginGuardConfig, GUARD, {"reduce_percent": D(50)}, "reduce_percent"),
        (MarginGuardConfig, GUARD, {"add_margin_amount": 5}, "add_margin_amount"),
        (MarginGuardConfig, GUARD, {"max_added_per_trade": 5}, "max_added_per_trade"),
        (MarginGuardConfig, {**GUARD, "action": "add_margin"}, {}, "add_margin_mode"),
        (MarginGuardConfig, ADD_FIXED, {"add_margin_amount": None}, "add_margin_amount"),
        (MarginGuardConfig, ADD_FIXED, {"add_margin_amount": 0}, "add_margin_amount"),
        (MarginGuardConfig, ADD_FIXED, {"add_margin_amount": True}, "add_margin_amount"),
        (MarginGuardConfig, ADD_FIXED, {"target_distance": D(20)}, "target_distance"),
        (MarginGuardConfig, ADD_FIXED, {"max_added_per_trade": 0}, "max_added_per_trade"),
        (MarginGuardConfig, ADD_RESTORE, {"target_distance": None}, "target_distance"),
        (MarginGuardConfig, ADD_RESTORE, {"target_distance": D(10)}, "target_distance"),  # not above the threshold
        (MarginGuardConfig, ADD_RESTORE, {"target_distance": D(100)}, "target_distance"),
        (MarginGuardConfig, ADD_RESTORE, {"add_margin_amount": 10}, "add_margin_amount"),
        (MarginGuardConfig, GUARD, {"cooldown_seconds": -1}, "cooldown_seconds"),
        (MarginGuardConfig, GUARD, {"trade_ids": "abc"}, "trade_ids"),
        (MarginGuardConfig, GUARD, {"trade_ids": ("a", "a")}, "trade_ids"),
        (MarginGuardConfig, GUARD, {"trade_ids": ("",)}, "trade_ids"),
        (TpSlConfig, TPSL, {"direction": "both"}, "direction"),
        (TpSlConfig, TPSL, {"trigger_percent": D(0)}, "trigger_percent"),
        (TpSlConfig, TPSL, {"trigger_percent": D(-5)}, "trigger_percent"),
        (TpSlConfig, {**TPSL, "direction": "loss"}, {"trigger_percent": D(100)}, "trigger_percent"),
        (TpSlConfig, TPSL, {"action": "hold"}, "action"),
        (TpSlConfig, TPSL, {"action": "set_stoploss"}, "price"),
        (TpSlConfig, TPSL, {"action": "set_takeprofit", "price": D("100000.25")}, "price"),
        (TpSlConfig, TPSL, {"action": "set_takeprofit", "price": D(0)}, "price"),
        (TpSlConfig, TPSL, {"price": D(100000)}, "price"),
        (TpSlConfig, TPSL, {"action": "trailing_stoploss"}, "trailing_distance"),
        (TpSlConfig, TPSL, {"action": "trailing_stoploss", "trailing_distance": D(0)}, "trailing_distance"),
        (TpSlConfig, TPSL, {"trailing_distance": D(100)}, "trailing_distance"),
        (TpSlConfig, {**TPSL, "direction": "loss"}, {"action": "breakeven"}, "action"),
        (TpSlConfig, TPSL, {"trade_ids": ["a", "a"]}, "trade_ids"),
        (AutoEntryConfig, ENTRY, {"side": "long"}, "side"),
        (AutoEntryConfig, ENTRY, {"leverage": D("0.5")}, "leverage"),
        (AutoEntryConfig, ENTRY, {"leverage": D(101)}, "leverage"),
        (AutoEntryConfig, ENTRY, {"quantity": None}, "quantity"),
        (AutoEntryConfig, ENTRY, {"margin": 1000}, "quantity"),
        (AutoEntryConfig, ENTRY, {"quantity": 0}, "quantity"),
        (AutoEntryConfig, ENTRY, {"quantity": 500_001}, "quantity"),
        (AutoEntryConfig, ENTRY, {"quantity": None, "margin": 0}, "margin"),
        (AutoEntryConfig, ENTRY, {"trigger": "price_cross"}, "trigger"),
        (AutoEntryConfig, ENTRY, {"trigger_price": D(100000)}, "trigger_price"),
        (AutoEntryConfig, PRICED, {"trigger_price": None}, "trigger_price"),
        (AutoEntryConfig, PRICED, {"trigger_price": D("100000.1")}, "trigger_price"),
        (AutoEntryConfig, ENTRY, {"stoploss": D(90000), "stoploss_percent": D(5)}, "stoploss"),
        (AutoEntryConfig, ENTRY, {"takeprofit": D(110000), "takeprofit_percent": D(5)}, "takeprofit"),
        (AutoEntryConfig, ENTRY, {"stoploss": D("90000.3")}, "stoploss"),
        (AutoEntryConfig, ENTRY, {"takeprofit": D(-1)}, "takeprofit"),
        (AutoEntryConfig, ENTRY, {"stoploss_percent": D(100)}, "stoploss_percent"),
        (AutoEntryConfig, ENTRY, {"takeprofit_percent": D(0)}, "takeprofit_percent"),
        (AutoEntryConfig, ENTRY, {"stoploss": D(110000), "takeprofit": D(100000)}, "stoploss"),
        (AutoEntryConfig, {**ENTRY, "side": "sell"}, {"stoploss": D(90000), "takeprofit": D(95000)}, "stoploss"),
        (AutoEntryConfig, PRICED, {"stoploss": D(100000)}, "stoploss"),
        (AutoEntryConfig, PRICED, {"takeprofit": D(99000)}, "takeprofit"),
        (AutoEntryConfig, ENTRY, {"repeat_count": -1}, "repeat_count"),
        (AutoEntryConfig, ENTRY, {"repeat_cooldown_seconds": -1}, "repeat_cooldown_seconds"),
    ],
)
def test_config_validation_names_the_field(cls, base, changes, field):
    with pytest.raises(SpecError) as caught:
        cls(**{**base, **changes})
    assert caught.value.field == field
    assert str(caught.value)
    assert str(caught.value)[0].isupper()
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("cls", "kwargs"),
    [
        (MarginGuardConfig, GUARD),
        (MarginGuardConfig, {**GUARD, "action": "reduce", "reduce_percent": D("33.3")}),
        (MarginGuardConfig, ADD_FIXED),
        (MarginGuardConfig, {**ADD_FIXED, "max_added_per_trade": 50_000, "trade_ids": ["a", "b"]}),
        (MarginGuardConfig, ADD_RESTORE),
        (MarginGuardConfig, {**ADD_RESTORE, "trigger": "margin_ratio", "target_distance": D(5)}),
        (TpSlConfig, TPSL),
        (TpSlConfig, {**TPSL, "action": "set_stoploss", "price": D("95000.5")}),
        (TpSlConfig, {**TPSL, "action": "trailing_stoploss", "trailing_distance": D("250.3")}),
        (TpSlConfig, {**TPSL, "direction": "loss", "action": "set_takeprofit", "price": D(101000)}),
        (AutoEntryConfig, ENTRY),
        (AutoEntryConfig, {**ENTRY, "quantity": None, "margin": 5000, "leverage": D("2.5")}),
        (AutoEntryConfig, {**PRICED, "stoploss": D(95000), "takeprofit_percent": D(10), "repeat_count": 3}),
    ],
)
def test_valid_configs(cls, kwargs):
    config = cls(**kwargs)
    assert isinstance(config.trade_ids if hasattr(config, "trade_ids") else (), tuple)


def test_int_decimals_are_coerced():
    config = MarginGuardConfig("margin_ratio", 80, "close")  # type: ignore[arg-type]
    assert isinstance(config.threshold, D)


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda: MarketSnapshot(D(1), D(1), D(1), D(1), datetime(2026, 1, 1)), "time"),  # noqa: DTZ001
        (lambda: MarketSnapshot(D(0), D(1), D(1), D(1), NOW), "last_price"),
        (lambda: Bucket(10, 1, D(1), D(1)), "buckets"),
        (lambda: trade("flat"), "side"),  # type: ignore[arg-type]
        (lambda: trade(quantity=0, margin=1, liquidation=1, opening_fee=0, maintenance_margin=0), "quantity"),
        (lambda: trade(margin=0), "margin"),
        (lambda: trade(entry=0, liquidation=1, margin=1, opening_fee=0, maintenance_margin=0), "entry_price"),
        (lambda: trade(stoploss=-1), "stoploss"),
        (lambda: AccountState(1.5, (), False, False), "balance"),  # type: ignore[arg-type]
        (lambda: AutomationSpec(1, "tpsl", MarginGuardConfig(**GUARD)), "kind"),
        (
            lambda: AutomationSpec(1, "margin_guard", MarginGuardConfig(**GUARD), max_price_age_seconds=0),
            "max_price_age_seconds",
        ),
    ],
)
def test_state_validation(factory, field):
    with pytest.raises(SpecError) as caught:
        factory()
    assert caught.value.field == field


def test_quote_for_picks_the_bucket_containing_the_quantity():
    snapshot = market(
        100000,
        buckets=(Bucket(1, 1000, D(99999), D(100001)), Bucket(1001, 10000, D(99990), D(100010))),
    )
    assert snapshot.quote_for(1) == (D(99999), D(100001))
    assert snapshot.quote_for(1000) == (D(99999), D(100001))
    assert snapshot.quote_for(1001) == (D(99990), D(100010))
    assert snapshot.quote_for(10001) == (D("99999.5"), D("100000.5"))  # outside every bucket: top of book
    assert snapshot.age(NOW + timedelta(seconds=3)) == timedelta(seconds=3)


def test_memory_json_round_trip():
    memory = Memory(
        trades={
            "a": TradeMemory(last_action_at=NOW, crossed=True, added_margin=500, skip="cap_reached"),
            "b": TradeMemory(fired=True, trail_best=D("105000.5"), trail_stoploss=D("104500.0")),
            "c": TradeMemory(),
        },
        fires=2,
        last_fire_at=NOW,
        armed=False,
        skip="stale_price",
    )
    data = memory.to_json()
    assert data["v"] == 1
    assert Memory.from_json(data) == memory
    import json

    assert Memory.from_json(json.loads(json.dumps(data))) == memory


@pytest.mark.parametrize("data", [None, {}])
def test_empty_memory(data):
    assert Memory.from_json(data) == Memory()


@pytest.mark.parametrize(
    "data",
    [
        {"trades": []},
        {"trades": {"a": {"last_action_at": "yesterday"}}},
        {"trades": {"a": {"last_action_at": "2026-01-01T00:00:00"}}},  # naive
        {"trades": {"a": {"trail_best": "abc"}}},
        {"trades": {"a": {"added_margin": -1}}},
        {"trades": {"a": {"fired": "yes"}}},
        {"trades": {"a": []}},
        {"fires": "1"},
        {"skip": 3},
    ],
)
def test_malformed_memory_raises(data):
    with pytest.raises(SpecError):
        Memory.from_json(data)
