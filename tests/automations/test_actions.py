"""The order-action registry: typed parameters, one plan per decision, and ``services.intents.request``."""

from __future__ import annotations

from decimal import Decimal

import pytest

from automations import decisions as d
from automations.actions import ACTIONS, DECISION_PLANS, ActionParamsError, action_for, decision_label
from automations.models import AuditEntry, OrderIntent
from automations.services.execution import order_intent_execute
from automations.services.intents import intent_of, request

DECISIONS = (
    d.ClosePosition(trade_id="t1", reason="r"),
    d.ReducePosition(
        trade_id="t1",
        close_quantity=100,
        reopen_quantity=60,
        side="sell",
        leverage=Decimal("12.5"),
        stoploss=None,
        takeprofit=Decimal("90000"),
        reason="r",
    ),
    d.AddMargin(trade_id="t1", amount=1234, reason="r"),
    d.SetStopLoss(trade_id="t1", price=Decimal("95000.5"), reason="r"),
    d.SetTakeProfit(trade_id="t1", price=Decimal("120000"), reason="r"),
    d.OpenPosition(
        side="buy",
        leverage=Decimal(10),
        quantity=None,
        margin=5000,
        stoploss=None,
        takeprofit=None,
        stoploss_percent=Decimal("2.5"),
        takeprofit_percent=None,
        reason="r",
    ),
)


def test_every_action_of_the_model_is_registered_once() -> None:
    assert set(ACTIONS) == set(OrderIntent.Action.values)
    assert all(ACTIONS[key].key == key for key in ACTIONS)


@pytest.mark.parametrize("decision", DECISIONS, ids=lambda x: x.kind)
def test_a_decision_becomes_an_intent_whose_params_parse_back_to_the_same_values(decision: d.Decision) -> None:
    req = DECISION_PLANS[decision.kind].request(decision)
    assert req is not None
    intent = intent_of(req, account_id=1)
    assert intent.protective == decision.protective
    assert intent.trade_id == getattr(decision, "trade_id", "")
    parsed = action_for(intent.action).parse(intent.params)
    assert parsed == req.params
    assert parsed.to_json() == intent.params


def test_a_reduce_is_a_close_that_carries_its_reopen() -> None:
    req = DECISION_PLANS["reduce"].request(DECISIONS[1])
    assert req is not None
    intent = intent_of(req, account_id=1)
    assert intent.action == "close"
    assert intent.params == {"reopen": {"side": "sell", "leverage": "12.5", "quantity": 60, "takeprofit": "90000"}}


def test_a_skip_asks_for_no_order_and_every_decision_has_a_title() -> None:
    assert DECISION_PLANS["skip"].request(d.Skip(reason="stale")) is None
    assert decision_label("reduce").startswith("Reduce:")
    assert decision_label("skip") == "No action (skipped)"


@pytest.mark.parametrize(
    ("action", "params", "field"),
    [
        ("open", {"side": "up", "leverage": "10", "quantity": 1}, "side"),
        ("open", {"side": "buy", "leverage": "10"}, "exactly one of quantity or margin"),
        ("open", {"side": "buy", "leverage": "0", "quantity": 1}, "leverage"),
        ("add_margin", {"amount": -5}, "amount"),
        ("add_margin", {}, "amount"),
        ("set_stoploss", {"price": "abc"}, "price"),
        ("close", {"surprise": 1}, "surprise"),
        ("nope", {}, "unknown order action"),
    ],
)
def test_bad_parameters_are_refused_naming_the_field(action: str, params: dict[str, object], field: str) -> None:
    with pytest.raises(ActionParamsError, match=field):
        action_for(action).parse(params)


@pytest.mark.django_db
def test_request_writes_the_intent_and_its_audit_entry(paper) -> None:
    intent = request(paper, "set_stoploss", {"price": "95000"}, trade_id="abc", origin="cockpit")
    intent.refresh_from_db()
    assert (intent.action, intent.trade_id, intent.protective) == ("set_stoploss", "abc", True)
    assert intent.params == {"price": "95000", "source": "cockpit"}
    entry = AuditEntry.objects.get(intent=intent)
    assert "requested (cockpit)" in entry.message
    entry_intent = request(paper, "open", {"side": "buy", "leverage": "10", "quantity": 5}, origin="cockpit")
    assert entry_intent.protective is False


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "params", "trade_id"),
    [("add_margin", {"amount": "x"}, "abc"), ("close", {}, ""), ("open", {"side": "buy", "quantity": 5}, "t")],
)
def test_a_bad_request_writes_nothing(paper, action: str, params: dict[str, object], trade_id: str) -> None:
    with pytest.raises(ActionParamsError):
        request(paper, action, params, trade_id=trade_id, origin="cockpit")
    assert not OrderIntent.objects.exists()
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_stored_intent_with_invalid_params_is_rejected_not_sent(paper, sim) -> None:
    intent = OrderIntent.objects.create(account=paper, action="add_margin", trade_id="t", params={"amount": "lots"})
    assert order_intent_execute(intent_id=intent.pk) == []
    intent.refresh_from_db()
    assert intent.state == OrderIntent.State.REJECTED
    assert intent.attempts == 0
    assert "invalid parameters (amount" in intent.error
