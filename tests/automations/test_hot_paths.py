"""The crash path's database work (issue #14): a tick that fires many automations records them in a few
transactions, protective orders queued first, and a failed batch loses nothing; executing a close does not re-read
what it already holds."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection
from django.db.models import F, Value
from django.db.models.functions import Upper
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import ExchangeAccount
from automations.exchange import public_client
from automations.models import AuditEntry, Automation, OrderIntent, TrackedTrade
from automations.services import evaluation, execution
from automations.services.evaluation import automations_evaluate_network, market_from_ticker
from automations.services.intent_machine import MUTABLE_FIELDS, claim, transition
from automations.services.trades import account_reconcile
from lnmarkets.schemas import to_wire_json
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
    # the row came with the intent, credentials included (decrypted from it at signing time), and stays cached
    assert account_reads == []
    assert not [sql for sql in selects if sql.split(" FROM ", 1)[1].startswith('"automations_auditentry"')]


def _guarded_close(paper, exchange, client_id: str = "ax-hot-open") -> OrderIntent:
    """A Margin Guard's close as the tick writes it: the intent and its pending decision entry."""
    trade = _managed_long(paper, exchange, client_id)
    guard = margin_guard(paper, threshold="5")
    intent = OrderIntent.objects.create(
        account=paper, automation=guard, action="close", trade_id=trade.id, protective=True
    )
    AuditEntry.objects.create(
        account=paper, automation=guard, intent=intent, kind="margin_guard", event="decision", outcome="pending"
    )
    return intent


def _statements(captured: list[dict[str, str]]) -> list[str]:
    """``VERB table`` of each statement, transaction control (BEGIN, SAVEPOINT, …) left out."""
    out = []
    for query in captured:
        sql = query["sql"].lstrip()
        verb = sql.split(" ", 1)[0].upper()
        if verb not in ("SELECT", "INSERT", "UPDATE", "DELETE"):
            continue
        marker = {"SELECT": " FROM ", "INSERT": " INTO ", "UPDATE": "UPDATE ", "DELETE": " FROM "}[verb]
        out.append(f"{verb} {sql.split(marker, 1)[1].split()[0].strip(chr(34))}")
    return out


def test_a_protective_close_takes_nine_statements(paper, sim, exchange):
    # issue #14: the worker's CPU per close is mostly the ORM; each statement here is one the close needs
    intent = _guarded_close(paper, exchange)
    with CaptureQueriesContext(connection) as ctx:
        assert _execute(intent.pk) is None
    assert _statements(ctx.captured_queries) == [
        "UPDATE automations_orderintent",  # counted and leased
        "SELECT automations_orderintent",  # read once, with its account and automation
        "UPDATE automations_orderintent",  # the claim, the row read back by the same statement (RETURNING)
        # (the credentials: decrypted from the account row read with the intent, not read again)
        "UPDATE automations_orderintent",  # ACKED, the answer stored
        "UPDATE automations_orderintent",  # RECONCILED
        "UPDATE automations_auditentry",  # the decision's final outcome
        # (no refused order's note to clear: the automation's row read with the intent has none)
        "UPDATE automations_trackedtrade",  # closed, with closed_by_axisor, in one write
        "INSERT automations_auditentry",  # accepted, and done: one statement
        "SELECT notifications_channel",  # the owner has no channel that wants it: nothing worded
    ]
    # nor a savepoint around the notifications nobody wants
    assert not [q for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith("SAVEPOINT")]
    entries = AuditEntry.objects.filter(intent=intent).exclude(event=AuditEntry.Event.DECISION).order_by("pk")
    assert [(e.event, e.outcome) for e in entries] == [("order", "ok"), ("reconcile", "ok")]
    stored = OrderIntent.objects.get(pk=intent.pk)
    assert stored.state == OrderIntent.State.RECONCILED
    assert (stored.attempts, stored.sends, stored.deliveries) == (1, 1, 1)
    row = TrackedTrade.objects.get(trade_id=stored.trade_id)
    assert (row.state, row.closed_by_axisor) == (TrackedTrade.State.CLOSED, True)
    assert AuditEntry.objects.get(intent=intent, event=AuditEntry.Event.DECISION).outcome == AuditEntry.Outcome.OK


def test_a_close_after_failures_still_resets_the_failure_count(paper, sim, exchange):
    intent = _guarded_close(paper, exchange)
    ExchangeAccount.objects.filter(pk=paper.pk).update(consecutive_failures=2)
    assert _execute(intent.pk) is None
    assert ExchangeAccount.objects.get(pk=paper.pk).consecutive_failures == 0


def test_a_transition_leaves_the_intent_exactly_as_stored(paper):
    intent = OrderIntent.objects.create(account=paper, action="close", trade_id="t-1", protective=True)
    OrderIntent.objects.filter(pk=intent.pk).update(deliveries=F("deliveries") + 5)  # another delivery counted it
    now = timezone.now()
    assert claim(intent, now=now, send_deadline=now, fence_at=now)
    stored = OrderIntent.objects.get(pk=intent.pk)
    assert {name: getattr(intent, name) for name in MUTABLE_FIELDS} == {
        name: getattr(stored, name) for name in MUTABLE_FIELDS
    }
    assert (intent.state, intent.attempts, intent.sends, intent.deliveries) == ("submitting", 1, 1, 5)
    # a compare-and-set on the old attempt matches nothing and leaves the instance as stored
    stale = OrderIntent.objects.get(pk=intent.pk)
    stale.attempts = 0
    assert not transition(stale, OrderIntent.State.RECONCILED)
    assert (stale.state, stale.attempts) == ("submitting", 1)
    assert transition(intent, OrderIntent.State.ACKED, result={"id": "t-1", "n": 1})
    assert transition(intent, OrderIntent.State.RECONCILED)
    stored = OrderIntent.objects.get(pk=intent.pk)
    assert intent.result == stored.result == {"id": "t-1", "n": 1}
    assert intent.finished_at == stored.finished_at is not None
    assert intent.next_check_at is None


def test_a_transition_writes_counters_nulls_and_json_as_the_orm_does(paper):
    intent = OrderIntent.objects.create(account=paper, action="close", trade_id="t-2", protective=True)
    now = timezone.now()
    assert claim(intent, now=now, send_deadline=now, fence_at=now + timedelta(seconds=5))
    # a request that never left: back to CREATED, the send uncounted (F - 1), a JSON value and a NULL written
    assert transition(
        intent, OrderIntent.State.CREATED, sends=F("sends") - 1, result={"a": [1, "é"]}, submitted_at=None
    )
    stored = OrderIntent.objects.get(pk=intent.pk)
    assert (stored.state, stored.attempts, stored.sends) == ("created", 1, 0)
    assert stored.result == intent.result == {"a": [1, "é"]}
    assert stored.submitted_at is None
    assert intent.submitted_at is None
    assert stored.fence_at == intent.fence_at == now + timedelta(seconds=5)
    assert stored.updated_at == intent.updated_at


def test_a_transition_refuses_an_expression_it_cannot_write(paper):
    intent = OrderIntent.objects.create(account=paper, action="close", trade_id="t-3", protective=True)
    with pytest.raises(TypeError, match="F\\(column\\) ± integer"):
        transition(intent, OrderIntent.State.REJECTED, checks=F("checks") * 2)
    with pytest.raises(TypeError, match="F\\(column\\) ± integer"):
        transition(intent, OrderIntent.State.REJECTED, error=Upper(Value("x")))
    assert OrderIntent.objects.get(pk=intent.pk).state == OrderIntent.State.CREATED


def _acked_close(paper, exchange) -> OrderIntent:
    """A close the exchange accepted whose settling transaction was lost (the worker died after ACKED)."""
    intent = _guarded_close(paper, exchange)
    closed = exchange.isolated_trade_close(intent.trade_id)
    answer = {"note": "order response", "wire": to_wire_json(closed)}
    OrderIntent.objects.filter(pk=intent.pk).update(state=OrderIntent.State.ACKED, attempts=1, sends=1, result=answer)
    return intent


def _told(intent: OrderIntent) -> list[tuple[str, str]]:
    entries = AuditEntry.objects.filter(intent=intent).exclude(event=AuditEntry.Event.DECISION).order_by("pk")
    return [(e.event, e.outcome) for e in entries]


def test_an_acked_close_settled_later_tells_its_acceptance_once(paper, sim, exchange):
    # the acceptance is written with the outcome: a delivery that died before settling wrote neither
    intent = _acked_close(paper, exchange)
    assert _execute(intent.pk) is None
    assert OrderIntent.objects.get(pk=intent.pk).state == OrderIntent.State.RECONCILED
    assert _told(intent) == [("order", "ok"), ("reconcile", "ok")]
    assert _execute(intent.pk) is None  # a redelivery of a settled intent writes nothing
    assert _told(intent) == [("order", "ok"), ("reconcile", "ok")]


def test_an_acked_close_whose_acceptance_was_told_before_is_not_told_again(paper, sim, exchange):
    # an intent acknowledged by a version that told the acceptance on its own, settled after an upgrade
    intent = _acked_close(paper, exchange)
    AuditEntry.objects.create(account=paper, intent=intent, event="order", outcome="ok", message="accepted")
    assert _execute(intent.pk) is None
    assert _told(intent) == [("order", "ok"), ("reconcile", "ok")]


# --- delivering intents ------------------------------------------------------------------------------------------


def test_an_intent_is_delivered_in_two_statements_and_a_settled_one_is_skipped(paper, sim, exchange):
    open_one, settled = (_guarded_close(paper, exchange, client_id=f"ax-deliver-{n}") for n in range(2))
    OrderIntent.objects.filter(pk=settled.pk).update(state=OrderIntent.State.RECONCILED)
    with CaptureQueriesContext(connection) as ctx:
        delivered = execution.order_intent_deliver(open_one.pk)
    assert _statements(ctx.captured_queries) == ["UPDATE automations_orderintent", "SELECT automations_orderintent"]
    assert delivered is not None
    assert delivered.pk == open_one.pk
    assert delivered.deliveries == 1
    with CaptureQueriesContext(connection) as ctx:
        assert delivered.account.network == paper.network  # read with it: advancing it reads no account again
    assert ctx.captured_queries == []
    with CaptureQueriesContext(connection) as ctx:
        assert execution.order_intent_deliver(settled.pk) is None
    assert _statements(ctx.captured_queries) == ["UPDATE automations_orderintent"]
    assert OrderIntent.objects.get(pk=settled.pk).deliveries == 0  # a terminal intent is not counted
