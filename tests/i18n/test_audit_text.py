"""Audit entries in the reader's language (automations.audit_text): every message key is translated, with the same
parameters; the English message column is what it always was; decisions are rendered from their typed fields."""

from __future__ import annotations

import re

import pytest
from django.utils import translation

from automations.audit_text import MESSAGES, audit_text, decision_text, render, say
from automations.models import AuditEntry


@pytest.mark.parametrize("key", sorted(MESSAGES))
def test_every_message_key_is_translated_with_its_parameters(key: str) -> None:
    params = {name: f"<{name}>" for name in re.findall(r"%\((\w+)\)s", MESSAGES[key])}
    english = say(key, **params).english
    with translation.override("pt-br"):
        portuguese = render(key, params)
    if re.sub(r"%\(\w+\)s|[\W_]", "", MESSAGES[key]):  # it has words, not only its parameters
        assert portuguese != english
    for value in params.values():
        assert value in english
        assert value in portuguese


def test_the_english_message_and_the_stored_key() -> None:
    said = say("automation_created", name="Guard", kind="margin_guard")
    assert said.english == "Automation “Guard” created (Margin Guard), active."
    assert said.inputs({"config": {}}) == {
        "config": {},
        "i18n": {"key": "automation_created", "params": {"name": "Guard", "kind": "margin_guard"}},
    }
    with pytest.raises(KeyError):
        say("no_such_key")


def test_an_entry_without_a_known_key_shows_its_message() -> None:
    entry = AuditEntry(event="status", outcome="info", message="Written before keys existed.", inputs={})
    assert audit_text(entry) == "Written before keys existed."
    entry.inputs = {"i18n": {"key": "gone_key", "params": {}}}
    assert audit_text(entry) == "Written before keys existed."
    entry.inputs = {"i18n": {"key": "automation_paused", "params": {}}}  # a parameter missing
    assert audit_text(entry) == "Written before keys existed."


@pytest.mark.parametrize(
    ("decision", "inputs", "english"),
    [
        (
            {"kind": "add_margin", "trade_id": "t", "amount": 5000},
            {"trigger": "margin_ratio", "margin_ratio": "80.1234", "threshold": "75", "limited_by": "free balance"},
            "Margin ratio 80.12 % ≥ 75 %: adding 5,000 sats of margin to trade t (limited by the free balance).",
        ),
        (
            {"kind": "set_stoploss", "trade_id": "t", "price": "95000.5"},
            {"direction": "profit", "pnl_percent": "20.5", "trigger_percent": "20"},
            "PnL 20.5 % ≥ +20 %: stop-loss of trade t to 95,000.5.",
        ),
        (
            {"kind": "open", "side": "sell", "margin": 20000, "leverage": "5"},
            {"trigger": "price_above", "last_price": "101000", "trigger_price": "100000"},
            "Last price 101,000 ≥ 100,000: opening a short of 20,000 sats of margin at 5x.",
        ),
        (
            {"kind": "skip", "code": "cap_reached", "trade_id": "t"},
            {"trigger": "liquidation_distance", "distance": "-1.5", "threshold": "5"},
            "Distance to liquidation -1.5 % ≤ 5 %. Trade t: Not done: the per-trade cap of added margin is reached.",
        ),
        ({"kind": "skip", "code": "a_code_from_the_future"}, {}, ""),
    ],
)
def test_decisions_are_said_from_their_typed_fields(decision, inputs, english) -> None:
    with translation.override("en"):
        assert decision_text(decision, inputs) == english
