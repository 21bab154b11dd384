"""Outcomes told truthfully (#15): the simulator refuses an Auto Entry's open → the automation's row says error (never
"completed") with what happens next, and the decision entry shows the final outcome; a later accepted order clears
a refused-order note; an entry the balance cannot cover says so on its row, and the note goes when it can."""

from __future__ import annotations

from decimal import Decimal

import pytest

from automations.models import AuditEntry, Automation, OrderIntent
from automations.outcome_phrases import CANNOT_AFFORD, OPEN_REFUSED, ORDER_REFUSED
from automations.services.outcomes import intents_settled
from automations.services.trades import account_reconcile
from tests.automations.conftest import auto_entry
from tests.automations.test_execution import _run, _tick

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_refused_open_puts_the_auto_entry_in_error_not_completed(paper, sim, exchange, sim_account):
    account_reconcile(account_id=paper.pk)
    entry = auto_entry(paper, trigger="price_below", trigger_price=Decimal("99000"))
    # The money left the account at the exchange after Axisor last read it: the exchange refuses the open.
    sim.control.set_balance(sim_account.id, 100)
    (intent_id,) = _tick(sim, 98500)
    intent = _run(intent_id)
    assert intent.state == OrderIntent.State.REJECTED
    entry.refresh_from_db()
    assert entry.status == Automation.Status.ERROR
    assert entry.status_message == OPEN_REFUSED
    assert "Paused until you edit or resume it" in entry.status_message
    decision = AuditEntry.objects.get(intent=intent, event=AuditEntry.Event.DECISION)
    assert decision.outcome == AuditEntry.Outcome.REJECTED  # not "pending" for ever
    assert exchange.isolated_trades_running_list() == ()


def test_an_accepted_open_settles_its_decision_ok(paper, sim, exchange):
    account_reconcile(account_id=paper.pk)
    entry = auto_entry(paper, trigger="price_below", trigger_price=Decimal("99000"))
    (intent_id,) = _tick(sim, 98500)
    assert _run(intent_id).state == OrderIntent.State.RECONCILED
    decision = AuditEntry.objects.get(intent_id=intent_id, event=AuditEntry.Event.DECISION)
    assert decision.outcome == AuditEntry.Outcome.OK
    entry.refresh_from_db()
    assert entry.status == Automation.Status.COMPLETED


def test_a_refused_protective_order_is_told_then_cleared_by_the_next_done_one(paper):
    guard = Automation.objects.create(account=paper, name="g", kind="margin_guard", config={})
    refused = OrderIntent.objects.create(
        account=paper, automation=guard, action="close", trade_id="t", state=OrderIntent.State.REJECTED
    )
    intents_settled([refused])
    guard.refresh_from_db()
    assert (guard.status, guard.status_message) == (Automation.Status.ACTIVE, ORDER_REFUSED)
    done = OrderIntent.objects.create(
        account=paper, automation=guard, action="close", trade_id="u", state=OrderIntent.State.RECONCILED
    )
    intents_settled([done])
    guard.refresh_from_db()
    assert guard.status_message == ""


def test_an_unaffordable_entry_says_so_until_the_balance_covers_it(paper, sim, exchange):
    account_reconcile(account_id=paper.pk)
    entry = auto_entry(paper, trigger="price_below", trigger_price=Decimal("99000"), quantity=100_000, leverage=1)
    assert _tick(sim, 98500) == []  # 1,000,000 sats cannot carry 100,000 USD at 1×
    entry.refresh_from_db()
    assert (entry.status, entry.status_message) == (Automation.Status.ACTIVE, CANNOT_AFFORD)
    Automation.objects.filter(pk=entry.pk).update(config={**entry.config, "quantity": 10})
    _tick(sim, 98000)
    entry.refresh_from_db()
    assert entry.status_message != CANNOT_AFFORD


def _done_close(account, automation, trade_id: str) -> OrderIntent:
    return OrderIntent.objects.create(
        account=account, automation=automation, action="close", trade_id=trade_id, state="reconciled"
    )


def test_a_done_order_clears_a_refused_note_by_what_its_delivery_read(paper, django_assert_num_queries):
    guard = Automation.objects.create(account=paper, name="g", kind="margin_guard", config={})
    Automation.objects.filter(pk=guard.pk).update(status_message=ORDER_REFUSED)
    # read with the note (as a delivery reads the intent with its automation): cleared
    done = OrderIntent.objects.select_related("automation").get(pk=_done_close(paper, guard, "u").pk)
    intents_settled([done])
    guard.refresh_from_db()
    assert guard.status_message == ""
    # read without it: no statement for the automation (the decision's outcome is the only one)
    other = OrderIntent.objects.select_related("automation").get(pk=_done_close(paper, guard, "v").pk)
    with django_assert_num_queries(1):
        intents_settled([other])
    # not read at all: the conditional update runs, as before
    Automation.objects.filter(pk=guard.pk).update(status_message=ORDER_REFUSED)
    intents_settled([OrderIntent.objects.get(pk=_done_close(paper, guard, "w").pk)])
    guard.refresh_from_db()
    assert guard.status_message == ""
