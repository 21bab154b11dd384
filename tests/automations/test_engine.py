"""The engine as a whole: purity and safety wrapper, decision records, and hypothesis properties across kinds."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from automations import engine
from automations.engine import (
    AddMargin,
    AutoEntryConfig,
    ClosePosition,
    EngineError,
    MarginGuardConfig,
    OpenPosition,
    ReducePosition,
    SetStopLoss,
    SetTakeProfit,
    Skip,
    SpecError,
    TpSlConfig,
    check_stoploss,
    check_takeprofit,
    evaluate,
    evaluate_safe,
)
from lnmarkets.maths import TICK

from .builders import NOW, D, account, market, spec, trade

ENGINE_FILES = [
    "engine.py",
    "engine_common.py",
    "specs.py",
    "decisions.py",
    "kinds/base.py",
    "kinds/margin_guard.py",
    "kinds/tpsl.py",
    "kinds/auto_entry.py",
]
# Django's translation (the kinds' sentences) and lazy import helpers are allowed; its ORM and anything that talks
# to the network or reads the clock are not.
ALLOWED_DJANGO = {"django.utils.translation", "django.utils.module_loading"}


@pytest.mark.parametrize("name", ENGINE_FILES)
def test_engine_modules_import_no_django_orm_network_or_clock(name):
    source = (Path(engine.__file__).parent / name).read_text()
    tree = ast.parse(source)
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }
    imported: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module)
    roots = {module.split(".")[0] for module in imported if module not in ALLOWED_DJANGO}
    assert roots <= {"__future__", "collections", "contextlib", "dataclasses", "datetime", "decimal", "functools"} | {
        "typing",
        "lnmarkets",
        "automations",
    }
    assert not {m for m in imported if m.startswith("automations.") and m.endswith(("models", "services", "forms"))}
    assert "datetime.now" not in source
    assert "time.time" not in source


def test_importing_the_engine_loads_no_orm_and_no_settings():
    code = (
        "import sys; import automations.engine; "
        "bad = [m for m in sys.modules if m in ('django.db.models', 'accounts.models', 'automations.models', "
        "'django.conf.settings', 'httpx', 'requests', 'websockets')]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PATH": ""})
    assert out.stdout.strip() == "[]"


def test_naive_now_is_refused():
    with pytest.raises(SpecError):
        evaluate(spec(TpSlConfig("profit", D(1), "close")), market(), account(), datetime(2026, 1, 1))  # noqa: DTZ001


def test_evaluate_safe_wraps_unexpected_errors():
    with pytest.raises(EngineError) as caught:
        evaluate_safe(spec(TpSlConfig("profit", D(1), "close")), market(), account(), datetime(2026, 1, 1))  # noqa: DTZ001
    assert caught.value.automation_id == 1
    assert isinstance(caught.value.__cause__, SpecError)


def test_evaluate_safe_passes_results_through():
    result = evaluate_safe(spec(TpSlConfig("profit", D(1), "close")), market(105000), account(trade()), NOW)
    assert [type(d) for d in result.decisions] == [ClosePosition]


@pytest.mark.parametrize(
    ("decision", "kind", "protective"),
    [
        (ClosePosition("t", "r"), "close", True),
        (ReducePosition("t", 1, 2, "buy", D(10), None, D(1), "r"), "reduce", True),
        (AddMargin("t", 5, "r"), "add_margin", True),
        (SetStopLoss("t", D(1), "r"), "set_stoploss", True),
        (SetTakeProfit("t", D(1), "r"), "set_takeprofit", True),
        (OpenPosition("buy", D(10), 100, None, None, None, None, None, "r"), "open", False),
        (Skip("r", trade_id="t"), "skip", True),
        (Skip("r"), "skip", False),
    ],
)
def test_decision_kinds_and_priority(decision, kind, protective):
    assert decision.kind == kind
    assert decision.protective is protective
    data = decision.to_json()
    assert data["kind"] == kind
    assert data["protective"] is protective
    json.dumps(data)


# --- hypothesis properties ------------------------------------------------------------------------------------------

sides = st.sampled_from(["buy", "sell"])
prices = st.integers(min_value=40_000 * 2, max_value=200_000 * 2).map(lambda n: Decimal(n) * TICK)
leverages = st.sampled_from([D(1), D(2), D(5), D(10), D(25), D(50), D(100)])
quantities = st.integers(min_value=1, max_value=50_000)


@st.composite
def trades(draw):
    side = draw(sides)
    entry = draw(prices)
    leverage = draw(leverages)
    position = trade(side, quantity=draw(quantities), entry=entry, leverage=leverage)
    # An existing SL/TP, valid at entry, half of the time.
    if draw(st.booleans()):
        gap = Decimal(draw(st.integers(min_value=1, max_value=2000))) * TICK
        stoploss = entry - gap if side == "buy" else entry + gap
        if (stoploss >= position.liquidation) if side == "buy" else (stoploss <= position.liquidation):
            position = trade(side, quantity=position.quantity, entry=entry, leverage=leverage, stoploss=stoploss)
    if draw(st.booleans()):
        gap = Decimal(draw(st.integers(min_value=1, max_value=4000))) * TICK
        takeprofit = entry + gap if side == "buy" else entry - gap
        if takeprofit > 0:
            position = trade(
                side,
                quantity=position.quantity,
                entry=entry,
                leverage=leverage,
                stoploss=position.stoploss,
                takeprofit=takeprofit,
            )
    return position


@st.composite
def tpsl_configs(draw):
    action = draw(st.sampled_from(["set_takeprofit", "set_stoploss", "breakeven", "trailing_stoploss", "close"]))
    direction = "profit" if action == "breakeven" else draw(st.sampled_from(["profit", "loss"]))
    kwargs = {}
    if action in ("set_takeprofit", "set_stoploss"):
        kwargs["price"] = draw(prices)
    if action == "trailing_stoploss":
        kwargs["trailing_distance"] = Decimal(draw(st.integers(min_value=1, max_value=20_000))) / 4
    trigger = Decimal(draw(st.integers(min_value=1, max_value=9_900))) / 100
    return TpSlConfig(direction, trigger, action, **kwargs)  # type: ignore[arg-type]


@st.composite
def guard_configs(draw):
    trigger = draw(st.sampled_from(["margin_ratio", "liquidation_distance"]))
    threshold = Decimal(draw(st.integers(min_value=1, max_value=98)))
    action = draw(st.sampled_from(["close", "reduce", "add_margin"]))
    kwargs = {"cooldown_seconds": draw(st.integers(min_value=0, max_value=120))}
    if action == "reduce":
        kwargs["reduce_percent"] = Decimal(draw(st.integers(min_value=1, max_value=99)))
    if action == "add_margin":
        if draw(st.booleans()):
            kwargs |= {"add_margin_mode": "fixed", "add_margin_amount": draw(st.integers(1, 100_000))}
        else:
            kwargs |= {"add_margin_mode": "restore_distance", "target_distance": threshold + 1}
        kwargs["max_added_per_trade"] = draw(st.none() | st.integers(1, 200_000))
    return MarginGuardConfig(trigger, threshold, action, **kwargs)


@st.composite
def entry_configs(draw):
    side = draw(sides)
    trigger = draw(st.sampled_from(["immediate", "price_below", "price_above"]))
    kwargs = {}
    if trigger != "immediate":
        kwargs["trigger_price"] = draw(prices)
    if draw(st.booleans()):
        kwargs["quantity"], kwargs["margin"] = draw(st.integers(1, 10_000)), None
    else:
        kwargs["quantity"], kwargs["margin"] = None, draw(st.integers(1, 1_000_000))
    return AutoEntryConfig(
        side,
        draw(leverages),
        trigger=trigger,
        repeat_count=draw(st.integers(0, 3)),
        repeat_cooldown_seconds=draw(st.integers(0, 60)),
        **kwargs,
    )


@st.composite
def markets(draw):
    last = draw(prices)
    spread = Decimal(draw(st.integers(min_value=1, max_value=20))) * TICK
    age = draw(st.sampled_from([0, 5, 15, 16, 300]))
    return market(last, bid=last - spread, ask=last + spread, age=age)


configs = st.one_of(tpsl_configs(), guard_configs(), entry_configs())
RELAXED = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@RELAXED
@given(config=st.one_of(tpsl_configs(), guard_configs()), positions=st.lists(trades(), max_size=3), snapshot=markets())
def test_proposed_stops_and_targets_respect_the_rules(config, positions, snapshot):
    positions = [trade(p.side, **_same(p), trade_id=f"t{i}") for i, p in enumerate(positions)]
    by_id = {p.id: p for p in positions}
    result = evaluate(spec(config), snapshot, account(*positions), NOW)
    for decision in result.decisions:
        if isinstance(decision, SetStopLoss | SetTakeProfit):
            position = by_id[decision.trade_id]
            bid, ask = snapshot.quote_for(position.quantity)
            bid, ask = min(bid, snapshot.bid), max(ask, snapshot.ask)
            assert decision.price % TICK == 0
            check = check_stoploss if isinstance(decision, SetStopLoss) else check_takeprofit
            assert check(position, decision.price, bid, ask) is None
            if isinstance(decision, SetStopLoss):
                if position.side == "buy":
                    assert position.liquidation <= decision.price < bid
                else:
                    assert ask < decision.price <= position.liquidation
            elif position.side == "buy":
                assert decision.price > ask
            else:
                assert decision.price < bid


def _same(position):
    return {
        "quantity": position.quantity,
        "entry": position.entry_price,
        "leverage": position.leverage,
        "stoploss": position.stoploss,
        "takeprofit": position.takeprofit,
    }


@RELAXED
@given(config=entry_configs(), snapshot=markets(), halted=st.booleans(), balance=st.integers(0, 10**9))
def test_kill_switch_never_lets_an_entry_through(config, snapshot, halted, balance):
    result = evaluate(spec(config), snapshot, account(balance=balance, kill_switch=True, halted=halted), NOW)
    assert not any(isinstance(d, OpenPosition) for d in result.decisions)
    assert result.memory.fires == 0


@RELAXED
@given(config=entry_configs(), snapshot=markets(), balance=st.integers(0, 10**9))
def test_no_entry_on_a_stale_price(config, snapshot, balance):
    result = evaluate(spec(config), snapshot, account(balance=balance), NOW)
    if snapshot.age(NOW) > timedelta(seconds=15):
        assert not any(isinstance(d, OpenPosition) for d in result.decisions)


@RELAXED
@given(
    config=configs,
    positions=st.lists(trades(), max_size=3),
    snapshots=st.lists(markets(), min_size=1, max_size=4),
    balance=st.integers(0, 10**8),
)
def test_evaluating_again_at_the_same_now_decides_nothing_new(config, positions, snapshots, balance):
    positions = [trade(p.side, **_same(p), trade_id=f"t{i}") for i, p in enumerate(positions)]
    state = account(*positions, balance=balance)
    memory = spec(config).memory
    for step, snapshot in enumerate(snapshots):
        now = NOW + timedelta(seconds=7 * step)
        moved = market(
            snapshot.last_price, bid=snapshot.bid, ask=snapshot.ask, age=(NOW - snapshot.time).total_seconds(), now=now
        )
        first = evaluate(spec(config, memory), moved, state, now)
        again = evaluate(spec(config, first.memory), moved, state, now)
        assert again.decisions == ()
        assert again.memory == first.memory
        assert again.completed == first.completed
        # The memory survives a JSON round trip unchanged.
        assert type(first.memory).from_json(json.loads(json.dumps(first.memory.to_json()))) == first.memory
        memory = first.memory


@RELAXED
@given(config=configs, positions=st.lists(trades(), max_size=3), snapshot=markets())
def test_unmanaged_trades_are_never_acted_on(config, positions, snapshot):
    positions = [trade(p.side, **_same(p), trade_id=f"t{i}", managed=False) for i, p in enumerate(positions)]
    result = evaluate(spec(config), snapshot, account(*positions), NOW)
    assert all(getattr(d, "trade_id", None) is None for d in result.decisions)
    assert dict(result.memory.trades) == {}
