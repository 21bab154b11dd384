"""FIELD_RULES (what the forms and help texts say) agree with the config classes (what the engine enforces)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from automations.engine import AutoEntryConfig, MarginGuardConfig, TpSlConfig
from automations.kinds import field_rules
from automations.specs import SpecError
from lnmarkets.maths import TICK

FIELD_RULES = field_rules()

# A valid config of each kind per combination of selectors that makes a field used.
BASES: dict[str, list[dict[str, object]]] = {
    "margin_guard": [
        {"trigger": "liquidation_distance", "threshold": D(5), "action": "close"},
        {"trigger": "margin_ratio", "threshold": D(50), "action": "reduce", "reduce_percent": D(50)},
        {
            "trigger": "margin_ratio",
            "threshold": D(50),
            "action": "add_margin",
            "add_margin_mode": "fixed",
            "add_margin_amount": 1000,
        },
        {
            "trigger": "margin_ratio",
            "threshold": D(50),
            "action": "add_margin",
            "add_margin_mode": "restore_distance",
            "target_distance": D(20),
        },
    ],
    "tpsl": [
        {"direction": "profit", "trigger_percent": D(10), "action": "set_takeprofit", "price": D(110000)},
        {"direction": "profit", "trigger_percent": D(10), "action": "trailing_stoploss", "trailing_distance": D(100)},
    ],
    "auto_entry": [
        {"side": "buy", "leverage": D(10), "quantity": 100, "margin": None, "trigger": "immediate"},
        {
            "side": "buy",
            "leverage": D(10),
            "quantity": None,
            "margin": 1000,
            "trigger": "price_below",
            "trigger_price": D(90000),
        },
    ],
}
CLASSES = {"margin_guard": MarginGuardConfig, "tpsl": TpSlConfig, "auto_entry": AutoEntryConfig}


def _cases():
    for kind, rules in FIELD_RULES.items():
        for rule in rules:
            if rule.unit in ("choice", "ids"):
                continue
            base = next(b for b in BASES[kind] if rule.used(b) and b.get(rule.name, "absent") is not None)
            yield pytest.param(kind, rule, base, id=f"{kind}.{rule.name}")


def _accepts(kind: str, base: dict[str, object], name: str, value: D) -> bool:
    integer = name in (
        "quantity",
        "margin",
        "add_margin_amount",
        "max_added_per_trade",
        "cooldown_seconds",
        "repeat_count",
        "repeat_cooldown_seconds",
    )
    try:
        CLASSES[kind](**{**base, name: int(value) if integer else value})
    except SpecError:
        return False
    return True


@pytest.mark.parametrize(("kind", "rule", "base"), list(_cases()))
def test_rule_bounds_match_the_config(kind, rule, base):
    step = TICK if rule.tick is not None else D(1)
    if rule.minimum is not None:
        assert _accepts(kind, base, rule.name, rule.minimum) is (not rule.min_open)
        assert _accepts(kind, base, rule.name, rule.minimum - step) is False
        assert rule.problem(rule.minimum - step) == "min"
    if rule.maximum is not None:
        assert _accepts(kind, base, rule.name, rule.maximum) is (not rule.max_open)
        assert _accepts(kind, base, rule.name, rule.maximum + step) is False
        assert rule.problem(rule.maximum + step) == "max"
    if rule.tick is not None:
        off = (rule.minimum or D(0)) + D(1000) + rule.tick / 2
        assert _accepts(kind, base, rule.name, off) is False
        assert rule.problem(off) == "tick"


@pytest.mark.parametrize(("kind", "rule", "base"), list(_cases()))
def test_unused_setting_is_refused_by_the_config(kind, rule, base):
    """Where a rule says a setting is not used, the config refuses it: hidden fields must be dropped (the form
    does)."""
    for other in BASES[kind]:
        if not rule.used(other) and rule.name not in other:
            value = rule.minimum + 1 if rule.minimum is not None else D(1000)
            assert _accepts(kind, other, rule.name, value) is False
