"""The crash path's database work (issue #14): a tick that fires many automations records them in a few
transactions, protective orders queued first, and a failed batch loses nothing; executing a close does not re-read
what it already holds."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from automations.exchange import public_client
from automations.models import AuditEntry, Automation, OrderIntent
from automations.services import evaluation
from automations.services.evaluation import automations_evaluate_network, market_from_ticker
from automations.services.trades import account_reconcile
from tests.automations.conftest import auto_entry, margin_guard
from tests.automations.test_exactly_once import _execute, _managed_long

pytestmark = pytest.mark.django_db(transaction=True)


def _market(sim, price: int):
    sim.control.set_price(price)
    market = market_from_ticker(public_client("simulator").futures_ticker_get())
    assert market is not None
    return market


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bool]]:
    """What the evaluation hands to the broker after its commits, in order (nothing is really queued)."""
    out: list[tuple[int, bool]] = []
    monkeypatch.setattr(evaluation, "enqueue_intents", lambda intents: out.extend(intents))
    return out


def _guard_and_entry(paper, exchange) -> tuple[Automation, Automation]:
    exchange.isolated_trade_create(type="market", side="buy", quantity=100, leverage=Decimal(10), client_id="x-1")
    OrderIntent.objects.create(account=paper, action="open", client_id="x-1", state="reconciled")
    account_reconcile(account_id=paper.pk)
    entry = auto_entry(paper)  # evaluated first (lower id), but it only opens a trade
    guard = margin_guard(paper, threshold="5")
    return entry, guard


def test_a_tick_queues_its_protective_orders_before_its_entries(paper, sim, exchange, queued):
    entry, guard = _guard_and_entry(paper, exchange)
    created = automations_evaluate_network(network="simulator", market=_market(sim, 95000), now=timezone.now())
    intents = {i.pk: i for i in OrderIntent.objects.filter(pk__in=created)}
    assert {i.automation_id for i in intents.values()} == {entry.pk, guard.pk}
    assert [intents[pk].protective for pk, _ in queued] == [True, False]
    assert [protective for _, protective in queued] == [True, False]
    for automation in (entry, guard):
        automation.refresh_from_db()
        assert automation.version == 1
    decisions = AuditEntry.objects.filter(event=AuditEntry.Event.DECISION, intent__in=created)
    assert decisions.count() == 2


def test_a_batch_that_fails_in_the_database_is_recorded_one_by_one(paper, sim, exchange, queued, monkeypatch, caplog):
    entry, guard = _guard_and_entry(paper, exchange)
    real = AuditEntry.objects.bulk_create
    batches: list[int] = []

    def bulk_create(objs, *args, **kwargs):  # noqa: ANN001, ANN202
        batches.append(len(objs))
        if len(objs) > 1:
            raise DatabaseError("simulated failure of the batch")
        return real(objs, *args, **kwargs)

    monkeypatch.setattr(AuditEntry.objects, "bulk_create", bulk_create)
    with caplog.at_level(logging.WARNING, logger="automations.services.evaluation"):
        created = automations_evaluate_network(network="simulator", market=_market(sim, 95000), now=timezone.now())
    assert batches == [2, 1, 1]  # the batch, rolled back whole; then each evaluation in its own transaction
    assert "one by one" in caplog.text
    assert OrderIntent.objects.filter(automation__in=[entry, guard]).count() == 2 == len(created)
    assert sorted(pk for pk, _ in queued) == sorted(created)
    for automation in (entry, guard):
        automation.refresh_from_db()
        assert automation.version == 1  # stored once: the rolled-back batch left nothing behind


def test_an_evaluation_that_lost_its_compare_and_set_writes_nothing_in_a_batch(paper, sim, exchange, queued):
    entry, guard = _guard_and_entry(paper, exchange)
    Automation.objects.filter(pk=guard.pk).update(version=7)  # another evaluator stored the guard first
    stale = [Automation.objects.get(pk=entry.pk), Automation.objects.get(pk=guard.pk)]
    stale[1].version = 6
    market = _market(sim, 95000)
    paper.refresh_from_db()  # the balance the reconciliation stored
    state = evaluation.account_state_of(paper)
    pending = evaluation._evaluations(stale, market, state, timezone.now())  # noqa: SLF001
    created = evaluation.automations_record_evaluations(pending, timezone.now())
    assert [i.automation_id for i in OrderIntent.objects.filter(pk__in=created)] == [entry.pk]
    assert not OrderIntent.objects.filter(automation=guard).exists()
    assert not AuditEntry.objects.filter(automation=guard).exists()


def test_executing_a_close_reads_the_account_once_and_looks_nothing_up_to_publish(paper, sim, exchange):
    trade = _managed_long(paper, exchange)
    intent = OrderIntent.objects.create(account=paper, action="close", trade_id=trade.id, protective=True)
    with CaptureQueriesContext(connection) as ctx:
        assert _execute(intent.pk) is None
    assert OrderIntent.objects.get(pk=intent.pk).state == OrderIntent.State.RECONCILED
    selects = [q["sql"] for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
    account_reads = [sql for sql in selects if sql.split(" FROM ", 1)[1].startswith('"accounts_exchangeaccount"')]
    # the credentials at signing time; the row itself came with the intent (select_related) and stays cached
    assert len(account_reads) == 1
    assert "api_secret_encrypted" in account_reads[0]
    assert not [sql for sql in selects if sql.split(" FROM ", 1)[1].startswith('"automations_auditentry"')]
