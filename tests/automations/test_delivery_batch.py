"""Batches of order intents (issue #14): one task delivers several intents side by side, each exactly as its own task
would: sent once, retried on its own, a raising one left to its lease without stopping the others. The same with
real worker processes killed mid-batch: tests/faults (T05, T06, overlapping deliveries)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from automations import tasks
from automations.models import AuditEntry, OrderIntent, TrackedTrade
from automations.services import delivery_batch, execution
from automations.services.delivery_batch import BatchDeliveryError, order_intents_execute
from automations.services.execution import order_intent_execute
from automations.services.trades import account_reconcile
from tests.automations.test_execution import TRADE_PATH, _entry

pytestmark = pytest.mark.django_db(transaction=True)
CLOSE_PATH = TRADE_PATH + "/close"
# Threads need a connection pool and no shared in-memory SQLite database: the PostgreSQL pass runs them.
THREADED = pytest.mark.skipif(connection.vendor != "postgresql", reason="threads need PostgreSQL's connection pool")


def _threads() -> int:
    return 4 if connection.vendor == "postgresql" else 1


def _managed_longs(paper, exchange, n: int) -> list[str]:
    ids = []
    for i in range(n):
        trade = exchange.isolated_trade_create(
            type="market", side="buy", quantity=100, leverage=Decimal(10), client_id=f"ax-batch-open-{i}"
        )
        OrderIntent.objects.create(account=paper, action="open", client_id=f"ax-batch-open-{i}", state="reconciled")
        ids.append(trade.id)
    account_reconcile(account_id=paper.pk)
    return ids


def _closes(paper, trade_ids: list[str]) -> list[OrderIntent]:
    return [
        OrderIntent.objects.create(account=paper, action="close", trade_id=trade_id, protective=True)
        for trade_id in trade_ids
    ]


def test_a_batch_closes_each_trade_once_and_settles_every_intent(paper, sim, exchange):
    trade_ids = _managed_longs(paper, exchange, 3)
    intents = _closes(paper, trade_ids)
    ids = [i.pk for i in intents]
    # the same intent twice in one batch is delivered once
    outcome = order_intents_execute([*ids, ids[0]], threads=_threads())
    assert (outcome.followups, outcome.retries, outcome.failed) == ([], [], [])
    assert set(OrderIntent.objects.filter(pk__in=ids).values_list("state", flat=True)) == {"reconciled"}
    for trade_id in trade_ids:
        assert sim.control.requests_for_trade(trade_id) == {CLOSE_PATH: 1}
        assert TrackedTrade.objects.get(trade_id=trade_id).state == TrackedTrade.State.CLOSED
    assert list(exchange.isolated_trades_running_list()) == []
    # delivered again (a redelivered batch): nothing is sent
    again = order_intents_execute(ids, threads=_threads())
    assert (again.followups, again.retries, again.failed) == ([], [], [])
    assert all(sim.control.requests_for_trade(t) == {CLOSE_PATH: 1} for t in trade_ids)


def test_an_unprocessed_intent_is_retried_alone_after_its_countdown(paper, sim, exchange):
    account_reconcile(account_id=paper.pk)
    first, second = _entry(paper, "buy", 10, 50), _entry(paper, "buy", 10, 60)
    sim.control.inject_fault("status", method="POST", path=TRADE_PATH, status=503, count=1)
    outcome = order_intents_execute([first.pk, second.pk], threads=1)
    assert len(outcome.retries) == 1
    retried, countdown = outcome.retries[0]
    assert countdown > 0
    states = dict(OrderIntent.objects.filter(pk__in=[first.pk, second.pk]).values_list("pk", "state"))
    other = second.pk if retried == first.pk else first.pk
    assert (states[retried], states[other]) == ("created", "reconciled")
    assert outcome.failed == []


def test_a_delivery_that_raises_leaves_the_others_delivered_and_is_logged(paper, sim, exchange, monkeypatch, caplog):
    trade_ids = _managed_longs(paper, exchange, 3)
    bad, *good = _closes(paper, trade_ids)
    from automations.services.execution import order_intent_send as real

    def send(intent: OrderIntent):  # noqa: ANN202
        if intent.pk == bad.pk:
            raise RuntimeError("boom")
        return real(intent)

    monkeypatch.setattr(delivery_batch, "order_intent_send", send)
    with caplog.at_level(logging.ERROR, logger="automations.services.delivery_batch"):
        outcome = order_intents_execute([bad.pk, *(g.pk for g in good)], threads=_threads())
    assert outcome.failed == [bad.pk]
    assert [OrderIntent.objects.get(pk=g.pk).state for g in good] == ["reconciled", "reconciled"]
    # claimed with the others, never sent: its lease brings it back, and the look-up finds the trade still running
    assert OrderIntent.objects.get(pk=bad.pk).state == "submitting"
    assert sim.control.requests_for_trade(bad.trade_id) == {}
    assert f"intent {bad.pk}" in caplog.text
    assert "boom" in caplog.text
    OrderIntent.objects.filter(pk=bad.pk).update(next_check_at=timezone.now())
    assert order_intent_execute(intent_id=bad.pk) == []
    assert OrderIntent.objects.get(pk=bad.pk).state == "reconciled"
    assert sim.control.requests_for_trade(bad.trade_id) == {CLOSE_PATH: 1}


def test_a_batch_of_closes_costs_the_same_few_statements_whatever_its_size(paper, sim, exchange):
    """Leased and read in two statements, claimed in one, settled in one transaction: the closes RECONCILED in one
    statement, their decisions told in one, their tracked trades closed in one on PostgreSQL (one each elsewhere),
    their audit entries written in one and their owner's channels read once (one owner here)
    (``tests/automations/test_hot_paths.py`` pins one close alone)."""
    trade_ids = _managed_longs(paper, exchange, 6)
    counted = []
    for chunk in (trade_ids[:2], trade_ids[2:]):
        ids = [i.pk for i in _closes(paper, chunk)]
        with CaptureQueriesContext(connection) as queries:
            outcome = order_intents_execute(ids, threads=1)
        assert (outcome.followups, outcome.retries, outcome.failed) == ([], [], [])
        sql = [q["sql"] for q in queries.captured_queries]
        assert not [q for q in sql if "SAVEPOINT" in q.upper()]
        counted.append(len(sql))
        assert set(OrderIntent.objects.filter(pk__in=ids).values_list("state", flat=True)) == {"reconciled"}
        # the answer is stored with the outcome: no ACKED step of its own
        assert all(OrderIntent.objects.get(pk=pk).result["id"] for pk in ids)
    assert counted[1] - counted[0] == (0 if connection.vendor == "postgresql" else 2 * 1)


def test_settling_together_fails_then_each_close_is_settled_on_its_own(paper, sim, exchange, monkeypatch, caplog):
    trade_ids = _managed_longs(paper, exchange, 3)
    intents = _closes(paper, trade_ids)
    failing = {"left": 1}
    from automations.services.outcomes import intents_settled as real

    def settled(settling):  # noqa: ANN001, ANN202 - the decisions' outcome, failing once
        if failing["left"]:
            failing["left"] -= 1
            raise DatabaseError("the database went away")
        return real(settling)

    monkeypatch.setattr(execution, "intents_settled", settled)
    with caplog.at_level(logging.ERROR, logger="automations.services.delivery_batch"):
        outcome = order_intents_execute([i.pk for i in intents], threads=_threads())
    assert (outcome.followups, outcome.retries, outcome.failed) == ([], [], [])
    assert "settling them together failed" in caplog.text
    for intent, trade_id in zip(intents, trade_ids, strict=True):
        intent.refresh_from_db()
        assert intent.state == "reconciled"
        assert sim.control.requests_for_trade(trade_id) == {CLOSE_PATH: 1}
        events = list(AuditEntry.objects.filter(intent=intent).values_list("event", flat=True).order_by("pk"))
        assert events == ["order", "reconcile"]  # accepted, then done: written once, by the one-by-one settle
        assert TrackedTrade.objects.get(trade_id=trade_id).state == TrackedTrade.State.CLOSED


def test_a_close_moved_by_another_delivery_before_the_claim_is_left_to_it(paper, sim, exchange, monkeypatch):
    trade_ids = _managed_longs(paper, exchange, 3)
    moved, *others = _closes(paper, trade_ids)
    from automations.services.execution import order_intents_deliver as real

    def deliver(ids):  # noqa: ANN001, ANN202 - the batch reads its intents, then another delivery claims one
        read = real(ids)
        OrderIntent.objects.filter(pk=moved.pk).update(state="submitting", attempts=1, sends=1)
        return read

    monkeypatch.setattr(delivery_batch, "order_intents_deliver", deliver)
    outcome = order_intents_execute([moved.pk, *(o.pk for o in others)], threads=_threads())
    assert (outcome.followups, outcome.retries, outcome.failed) == ([], [], [])
    assert sim.control.requests_for_trade(moved.trade_id) == {}  # not sent by this batch: the other one decides
    assert OrderIntent.objects.get(pk=moved.pk).attempts == 1
    assert [OrderIntent.objects.get(pk=o.pk).state for o in others] == ["reconciled", "reconciled"]


def test_a_batch_that_dies_between_its_sends_and_its_settling_is_settled_by_look_ups(paper, sim, exchange, monkeypatch):
    """The process dies after the POSTs, before the settling transaction commits: the intents stay SUBMITTING;
    once their leases run out each is looked up (the trade is no longer running) and settled, never sent again."""
    trade_ids = _managed_longs(paper, exchange, 3)
    intents = _closes(paper, trade_ids)

    def dies(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise SystemExit("killed")

    monkeypatch.setattr(delivery_batch, "_settle_together", dies)
    with pytest.raises(SystemExit):
        order_intents_execute([i.pk for i in intents], threads=_threads())
    assert set(OrderIntent.objects.filter(pk__in=[i.pk for i in intents]).values_list("state", flat=True)) == {
        "submitting"
    }
    monkeypatch.undo()
    OrderIntent.objects.filter(pk__in=[i.pk for i in intents]).update(next_check_at=timezone.now())
    for intent in intents:
        assert order_intent_execute(intent_id=intent.pk) == []
    for intent, trade_id in zip(intents, trade_ids, strict=True):
        assert OrderIntent.objects.get(pk=intent.pk).state == "reconciled"
        assert sim.control.requests_for_trade(trade_id) == {CLOSE_PATH: 1}


@THREADED
def test_two_batches_of_the_same_entries_at_once_send_each_order_once(paper, sim, exchange):
    account_reconcile(account_id=paper.pk)
    intents = [_entry(paper, "buy", 10, 50 + i) for i in range(4)]
    ids = [i.pk for i in intents]
    sim.control.inject_fault("delay", method="POST", path=TRADE_PATH, seconds=0.3, count=None)
    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(lambda order: order_intents_execute(order, threads=4), [ids, ids[::-1]]))
    assert all(o.failed == [] for o in outcomes)
    assert set(OrderIntent.objects.filter(pk__in=ids).values_list("state", flat=True)) == {"reconciled"}
    assert [sim.control.requests_for_client_id(i.client_id) for i in intents] == [1, 1, 1, 1]
    opened = [t.client_id for t in exchange.isolated_trades_running_list()]
    assert sorted(opened) == sorted(i.client_id for i in intents)


@THREADED
def test_a_batch_overlaps_the_exchanges_waits(paper, sim, exchange):
    """Entries held 0.5 s each at the exchange: four in four threads take less than half as long as four one after
    another (which take at least the four waits, 2 s). A ratio in one run, not a time bound."""
    import time

    # no reconciliation first: its reads would take the key's budget (5 a second) that the POSTs need
    sim.control.inject_fault("delay", method="POST", path=TRADE_PATH, seconds=0.5, count=None)
    elapsed = {}
    for threads in (4, 1):
        ids = [_entry(paper, "buy", 10, 50 + i).pk for i in range(4)]
        started = time.monotonic()
        outcome = order_intents_execute(ids, threads=threads)
        elapsed[threads] = time.monotonic() - started
        assert (outcome.failed, outcome.retries) == ([], [])
        assert set(OrderIntent.objects.filter(pk__in=ids).values_list("state", flat=True)) == {"reconciled"}
    assert elapsed[1] >= 2.0
    assert elapsed[4] < elapsed[1] / 2


# --- the task and the queueing ----------------------------------------------------------------------------------


def test_the_task_queues_retries_alone_and_fails_when_a_delivery_raised(monkeypatch):
    queued: list[tuple[int, bool | None, float]] = []
    monkeypatch.setattr(
        tasks,
        "order_intent_enqueue",
        lambda intent_id, *, protective=None, countdown=0, producer=None: queued.append(
            (intent_id, protective, countdown)
        ),
    )
    outcome = delivery_batch.BatchOutcome(followups=[9], retries=[(4, 2.5)], failed=[])
    monkeypatch.setattr(delivery_batch, "order_intents_execute", lambda ids, threads: outcome)
    tasks.order_intents_execute_task.run([4, 5], True)
    assert queued == [(4, True, 2.5), (9, None, 0)]
    outcome.failed.append(5)
    with pytest.raises(BatchDeliveryError, match=r"\[5\]"):
        tasks.order_intents_execute_task.run([4, 5], True)


def test_intents_are_queued_in_batches_protective_first(monkeypatch, settings):
    settings.DELIVERY_BATCH = 3
    sent: list[tuple[str, object, str]] = []

    def recorder(name: str):  # noqa: ANN202
        def apply_async(*, args, queue, **options):  # noqa: ANN001, ANN202, ARG001
            sent.append((name, args[0], queue))

        return apply_async

    monkeypatch.setattr(tasks.order_intent_execute_task, "apply_async", recorder("one"))
    monkeypatch.setattr(tasks.order_intents_execute_task, "apply_async", recorder("batch"))
    intents = [(1, False), (2, True), (3, True), (4, False), (5, True), (6, True), (7, True), (8, True), (9, True)]
    tasks.order_intents_enqueue(intents)
    assert sent == [
        ("batch", [2, 3, 5], "protective"),
        ("batch", [6, 7, 8], "protective"),
        ("one", 9, "protective"),
        ("batch", [1, 4], "celery"),
    ]
    sent.clear()
    settings.DELIVERY_BATCH = 1
    tasks.order_intents_enqueue([(1, True), (2, False)])
    assert sent == [("one", 1, "protective"), ("one", 2, "celery")]


def test_closes_settled_together_each_notify_the_owners_channels(paper, sim, exchange):
    """The owner's channels are read once for the batch's entries (``shared_reads``), and each close still gets its
    own notification on each channel that wants it."""
    from notifications.models import Channel, Notification

    Channel.objects.create(
        owner=paper.owner, kind="email", name="mail", address="me@example.com", events=["automation_acted"]
    )
    Channel.objects.create(
        owner=paper.owner, kind="email", name="none", address="other@example.com", events=["kill_switch"]
    )
    trade_ids = _managed_longs(paper, exchange, 3)
    intents = _closes(paper, trade_ids)
    outcome = order_intents_execute([i.pk for i in intents], threads=1)
    assert (outcome.followups, outcome.retries, outcome.failed) == ([], [], [])
    rows = Notification.objects.filter(channel__name="mail")
    assert rows.count() == 3  # one per close
    assert len({n.idempotency_key for n in rows}) == 3  # each from its own close's entry
    assert not Notification.objects.filter(channel__name="none").exists()  # wants kill switches only


def test_an_intent_of_an_unknown_action_fails_alone_without_holding_up_its_batch(paper, sim, exchange):
    trade_ids = _managed_longs(paper, exchange, 3)
    broken, *closes = _closes(paper, trade_ids)
    OrderIntent.objects.filter(pk=broken.pk).update(action="bogus")  # a row no code writes
    outcome = order_intents_execute([broken.pk, *(c.pk for c in closes)], threads=_threads())
    assert outcome.failed == [broken.pk]
    assert [OrderIntent.objects.get(pk=c.pk).state for c in closes] == ["reconciled", "reconciled"]
    assert sim.control.requests_for_trade(broken.trade_id) == {}
