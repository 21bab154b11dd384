"""Issue #11, item by item, against the simulator in this process: overlapping deliveries and held requests never
send a second order; bookkeeping after an accepted close cannot leave it unfinished; reconciliation never blames
the user for Axisor's closes; "already closed" is done, not failed; the sweep works from leases; countdowns are
capped; the state machine refuses edges it does not have. The same faults with real processes: tests/faults."""

from __future__ import annotations

import ast
import dataclasses
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from automations.exchange import clients_reset
from automations.models import AuditEntry, OrderIntent, TrackedTrade
from automations.services import management
from automations.services.execution import RetryLaterError, order_intent_execute
from automations.services.intent_machine import IllegalTransitionError, claim_many, transition, transition_many
from automations.services.sweep import intents_sweep
from automations.services.trades import account_reconcile, intents_due, tracked_trade_upsert
from automations.tasks import safe_countdown
from lnmarkets.schemas import to_wire_json
from tests.automations.test_execution import TRADE_PATH, _entry, _run

pytestmark = pytest.mark.django_db(transaction=True)
CLOSE_PATH = TRADE_PATH + "/close"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fast_http(settings):
    """A 1 s read timeout, so a held request times out quickly."""
    settings.LNMARKETS_HTTP_TIMEOUT = 1.0
    clients_reset()
    yield
    clients_reset()


@pytest.fixture
def short_window(sim, settings):
    """The exchange accepts signatures at most 2 s old; Axisor knows it (fence = 1 s send window + 2 × 2 s)."""
    ctx = sim.server.ctx
    original = ctx.config
    ctx.config = dataclasses.replace(original, timestamp_window_ms=2000)
    settings.LNMARKETS_TIMESTAMP_WINDOW_SECONDS = 2
    settings.ORDER_SEND_WINDOW_SECONDS = 1.0
    yield
    ctx.config = original


def _managed_long(paper, exchange, client_id: str = "ax-test-open"):
    trade = exchange.isolated_trade_create(
        type="market", side="buy", quantity=100, leverage=Decimal(10), client_id=client_id
    )
    OrderIntent.objects.create(account=paper, action="open", client_id=client_id, state="reconciled")
    account_reconcile(account_id=paper.pk)
    return trade


def _execute(intent_id: int) -> float | None:
    """One delivery; the countdown it asked for, or None when it finished."""
    try:
        order_intent_execute(intent_id=intent_id)
    except RetryLaterError as retry:
        return retry.countdown
    return None


def _deliver_until_terminal(intent_id: int, timeout: float = 20.0) -> OrderIntent:
    """Deliver again and again as Celery would, waiting each countdown (at most 0.5 s here)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        countdown = _execute(intent_id)
        if countdown is None:
            break
        time.sleep(min(countdown, 0.5))
    return OrderIntent.objects.get(pk=intent_id)


def _trades_with(exchange, client_id: str) -> int:
    every = [*exchange.isolated_trades_running_list(), *exchange.isolated_trades_closed_list(limit=100).data]
    return sum(1 for t in every if t.client_id == client_id)


# --- 1. overlapping deliveries, held requests ---------------------------------------------------------------------


def test_overlapping_deliveries_of_a_held_open_send_one_order(paper, sim, exchange, fast_http):
    account_reconcile(account_id=paper.pk)
    intent = _entry(paper, "buy", 10, 50)
    # the exchange holds the POST for 3 s and then processes it, whether or not the client is still there
    sim.control.inject_fault("hold", method="POST", path=TRADE_PATH, seconds=3, count=1)
    assert _execute(intent.pk) is not None  # timed out after 1 s: the request is still held at the exchange
    # more deliveries of the same intent while it is held, as a redelivery or the sweep would send them: each one
    # only looks (and settles once the held request has been processed), none sends
    for _ in range(3):
        countdown = _execute(intent.pk)
        assert countdown is None or countdown <= 8
        if countdown is None:
            assert OrderIntent.objects.get(pk=intent.pk).state == OrderIntent.State.RECONCILED
        assert sim.control.requests_for_client_id(intent.client_id) == 1
    # once the held request is processed, the next delivery finds it and settles: never a second POST
    final = _deliver_until_terminal(intent.pk)
    assert final.state == OrderIntent.State.RECONCILED, final.error
    assert sim.control.requests_for_client_id(intent.client_id) == 1
    assert _trades_with(exchange, intent.client_id) == 1
    assert TrackedTrade.objects.get(trade_id=final.trade_id).managed


@pytest.mark.slow  # a fault scenario that waits on real clocks: the PostgreSQL pass runs it
def test_a_request_held_past_the_exchanges_window_is_refused_there_and_sent_again_after_the_fence(
    paper, sim, exchange, fast_http, short_window
):
    account_reconcile(account_id=paper.pk)
    intent = _entry(paper, "buy", 10, 60)
    # held 4 s: when the exchange gets to it, its 2 s signature window has passed and it is refused
    sim.control.inject_fault("hold", method="POST", path=TRADE_PATH, seconds=4, count=1)
    assert _execute(intent.pk) is not None  # timed out: UNKNOWN
    intent.refresh_from_db()
    assert intent.state == OrderIntent.State.UNKNOWN
    fence = intent.fence_at
    assert fence is not None
    while timezone.now() < fence:
        assert _execute(intent.pk) is not None  # absent but not fenced: looked up again, never sent
        assert OrderIntent.objects.get(pk=intent.pk).attempts == 1
        time.sleep(0.3)
    final = _deliver_until_terminal(intent.pk)
    assert final.state == OrderIntent.State.RECONCILED, final.error
    assert final.sends == 2  # (attempts may be more: a look-up-heavy loop meets the local rate limiter)
    assert sim.control.requests_for_client_id(intent.client_id) == 2  # the refused one and the re-send
    assert _trades_with(exchange, intent.client_id) == 1


def test_a_stale_delivery_cannot_move_an_intent_another_one_advanced(paper):
    intent = _entry(paper, "buy", 10, 5, state=OrderIntent.State.SUBMITTING, attempts=1)
    stale = OrderIntent.objects.get(pk=intent.pk)
    # another delivery settles attempt 1 …
    assert transition(intent, OrderIntent.State.RECONCILED)
    # … so the stale view of attempt 1 fails its compare-and-set and sees the truth
    assert not transition(stale, OrderIntent.State.ACKED)
    assert stale.state == OrderIntent.State.RECONCILED
    # and a later attempt number fences out a delivery that read the earlier one
    other = _entry(paper, "buy", 10, 5, state=OrderIntent.State.UNKNOWN, attempts=1)
    reader = OrderIntent.objects.get(pk=other.pk)
    assert transition(other, OrderIntent.State.CREATED)
    OrderIntent.objects.filter(pk=other.pk).update(state=OrderIntent.State.UNKNOWN, attempts=2)
    assert not transition(reader, OrderIntent.State.CREATED)
    assert reader.attempts == 2


def test_compare_and_sets_of_several_intents_in_one_statement_move_each_one_on_its_own_condition(paper):
    """``claim_many`` and ``transition_many``: each row of the statement is its own compare-and-set, so a stale
    view of one intent fails alone (left as read) while the others move; the values of each row are its own."""
    now = timezone.now()
    fresh = [_entry(paper, "buy", 10, 5 + i) for i in range(3)]
    stale = fresh[1]
    OrderIntent.objects.filter(pk=stale.pk).update(state=OrderIntent.State.SUBMITTING, attempts=1)  # claimed elsewhere
    windows = {"now": now, "send_deadline": now + timedelta(seconds=10), "fence_at": now + timedelta(seconds=70)}
    claimed = claim_many(fresh, **windows)
    assert [i.pk for i in claimed] == [fresh[0].pk, fresh[2].pk]
    assert [(i.state, i.attempts, i.sends) for i in claimed] == [("submitting", 1, 1)] * 2
    assert (stale.state, stale.attempts) == ("created", 0)  # left as read: the caller does nothing more with it
    assert OrderIntent.objects.get(pk=stale.pk).attempts == 1  # the other claim stands
    with pytest.raises(IllegalTransitionError):
        claim_many([OrderIntent.objects.get(pk=stale.pk)], **windows)

    results = [{"id": f"t-{i.pk}", "note": "it's 'quoted'", "n": [1, 2]} for i in claimed]
    OrderIntent.objects.filter(pk=claimed[1].pk).update(attempts=2)  # another delivery moved this one on
    moved = transition_many(
        claimed,
        OrderIntent.State.RECONCILED,
        [{"trade_id": f"t-{i.pk}", "result": r} for i, r in zip(claimed, results, strict=True)],
    )
    assert moved == [claimed[0]]
    stored = OrderIntent.objects.get(pk=claimed[0].pk)
    assert (stored.state, stored.trade_id, stored.result) == ("reconciled", f"t-{claimed[0].pk}", results[0])
    assert stored.finished_at is not None
    assert stored.next_check_at is None
    assert (claimed[0].state, claimed[0].result, claimed[0].finished_at) == (
        "reconciled",
        results[0],
        stored.finished_at,
    )
    assert OrderIntent.objects.get(pk=claimed[1].pk).state == "submitting"
    with pytest.raises(ValueError, match="same columns"):
        transition_many([claimed[1]], OrderIntent.State.RECONCILED, [{"trade_id": "x"}, {"result": {}}])
    with pytest.raises(IllegalTransitionError):
        transition_many([stored], OrderIntent.State.CREATED, [{}])


def test_edges_the_state_machine_does_not_have_are_refused(paper):
    intent = _entry(paper, "buy", 10, 5, state=OrderIntent.State.RECONCILED)
    with pytest.raises(IllegalTransitionError):
        transition(intent, OrderIntent.State.CREATED)
    acked = _entry(paper, "buy", 10, 5, state=OrderIntent.State.ACKED, attempts=1)
    with pytest.raises(IllegalTransitionError):
        transition(acked, OrderIntent.State.CREATED)  # an accepted order is never sent again


# --- 3. bookkeeping after an accepted close --------------------------------------------------------------------------


def test_a_close_whose_follow_up_reads_fail_is_terminal_at_once(paper, sim, exchange):
    trade = _managed_long(paper, exchange)
    intent = OrderIntent.objects.create(account=paper, action="close", trade_id=trade.id, protective=True)
    # the exchange closes the trade, then every read of this key fails for 30 s
    sim.control.inject_fault("accept_then_fail_get", method="POST", path=CLOSE_PATH, seconds=30, status=504)
    assert _execute(intent.pk) is None
    intent.refresh_from_db()
    assert intent.state == OrderIntent.State.RECONCILED
    row = TrackedTrade.objects.get(trade_id=trade.id)
    assert row.state == TrackedTrade.State.CLOSED
    assert row.closed_by_axisor
    assert row.exit_price is not None  # from the close's own answer, no read needed
    assert sim.control.requests_for_trade(trade.id) == {CLOSE_PATH: 1}


def test_an_accepted_order_whose_bookkeeping_was_lost_is_settled_from_the_stored_answer(paper, sim, exchange):
    account_reconcile(account_id=paper.pk)
    trade = exchange.isolated_trade_create(
        type="market", side="buy", quantity=7, leverage=Decimal(5), client_id="ax-acked-1"
    )
    answer = {"note": "order response", "wire": to_wire_json(trade)}
    intent = _entry(
        paper, "buy", 5, 7, client_id="ax-acked-1", state=OrderIntent.State.ACKED, attempts=1, result=answer
    )
    sim.control.inject_fault("status", method="GET", status=503, count=50)  # nothing can be read
    assert _execute(intent.pk) is None
    intent.refresh_from_db()
    assert intent.state == OrderIntent.State.RECONCILED
    assert intent.trade_id == trade.id
    assert TrackedTrade.objects.get(trade_id=trade.id).managed


# --- 4. reconciliation knows Axisor's in-flight closes ---------------------------------------------------------------


def test_reconciliation_does_not_call_an_in_flight_close_of_ours_external(paper, sim, exchange):
    trade = _managed_long(paper, exchange)
    # our close was claimed and sent; its answer is not recorded yet when the periodic reconciliation runs
    intent = OrderIntent.objects.create(
        account=paper, action="close", trade_id=trade.id, state=OrderIntent.State.SUBMITTING, attempts=1
    )
    exchange.isolated_trade_close(trade.id)
    counts = account_reconcile(account_id=paper.pk)
    assert counts["closed_outside"] == 0
    assert not AuditEntry.objects.filter(message__contains="outside Axisor").exists()
    assert TrackedTrade.objects.get(trade_id=trade.id).closed_by_axisor
    # the close's own delivery then settles it
    assert _execute(intent.pk) is None
    assert OrderIntent.objects.get(pk=intent.pk).state == OrderIntent.State.RECONCILED


def test_a_trade_recorded_after_the_running_list_was_taken_is_not_gone(paper, sim, exchange):
    """The T20 soak's find: an order of ours opened a trade while reconciliation's running list was on its way; the
    list did not show it, and it was called closed outside Axisor while it ran on."""
    account_reconcile(account_id=paper.pk)
    later = timezone.now() + timedelta(seconds=30)  # recorded after any list this reconciliation takes
    fresh = TrackedTrade.objects.create(
        account=paper,
        trade_id="t-opened-meanwhile",
        origin=TrackedTrade.Origin.AXISOR,
        managed=True,
        state=TrackedTrade.State.RUNNING,
        side="buy",
        quantity=1,
        entry_price=Decimal(100000),
        margin=100,
        leverage=Decimal(10),
        liquidation=Decimal(90909),
        last_seen_at=later,
    )
    stale = TrackedTrade.objects.create(
        **{**_row_fields(fresh), "trade_id": "t-really-gone", "last_seen_at": timezone.now() - timedelta(minutes=1)}
    )
    counts = account_reconcile(account_id=paper.pk)
    assert TrackedTrade.objects.get(pk=fresh.pk).state == TrackedTrade.State.RUNNING
    assert TrackedTrade.objects.get(pk=stale.pk).state == TrackedTrade.State.CLOSED
    assert counts["closed_outside"] == 1


def _row_fields(row: TrackedTrade) -> dict[str, object]:
    names = ("account", "origin", "managed", "state", "side", "quantity", "entry_price", "margin", "leverage")
    return {name: getattr(row, name) for name in (*names, "liquidation")}


def test_an_older_view_of_a_trade_never_reopens_it(paper, sim, exchange):
    trade = _managed_long(paper, exchange)
    running_view = exchange.isolated_trades_running_list()[0]  # taken before the close
    intent = OrderIntent.objects.create(account=paper, action="close", trade_id=trade.id, protective=True)
    assert _execute(intent.pk) is None
    tracked_trade_upsert(paper, running_view)  # a reconciliation's list that was on its way during the close
    row = TrackedTrade.objects.get(trade_id=trade.id)
    assert row.state == TrackedTrade.State.CLOSED
    assert row.closed_by_axisor


def test_a_trade_closed_by_hand_is_still_outside_axisor(paper, sim, exchange):
    trade = _managed_long(paper, exchange)
    exchange.isolated_trade_close(trade.id)
    counts = account_reconcile(account_id=paper.pk)
    assert counts["closed_outside"] == 1
    assert AuditEntry.objects.filter(message__contains="closed outside Axisor").count() == 1
    assert not TrackedTrade.objects.get(trade_id=trade.id).closed_by_axisor


# --- 5. already closed ---------------------------------------------------------------------------------------------


def test_closing_an_already_closed_trade_is_done_not_a_failure(paper, sim, exchange):
    trade = _managed_long(paper, exchange)
    intent = OrderIntent.objects.create(account=paper, action="close", trade_id=trade.id, protective=True)
    exchange.isolated_trade_close(trade.id)  # closed on the exchange before our close is sent
    assert _execute(intent.pk) is None
    intent.refresh_from_db()
    assert intent.state == OrderIntent.State.RECONCILED
    assert "already done" in intent.result["note"]
    paper.refresh_from_db()
    assert paper.consecutive_failures == 0
    assert not TrackedTrade.objects.get(trade_id=trade.id).closed_by_axisor  # not ours: it was closed before


def test_a_second_close_of_ours_refused_as_already_closed_keeps_axisor_as_the_closer(paper, sim, exchange):
    trade = _managed_long(paper, exchange)
    first = OrderIntent.objects.create(account=paper, action="close", trade_id=trade.id, protective=True)
    second = OrderIntent.objects.create(account=paper, action="close", trade_id=trade.id, protective=True)
    assert _execute(first.pk) is None
    assert _execute(second.pk) is None  # 400: the first one closed it
    assert OrderIntent.objects.get(pk=second.pk).state == OrderIntent.State.RECONCILED
    assert TrackedTrade.objects.get(trade_id=trade.id).closed_by_axisor
    account_reconcile(account_id=paper.pk)
    assert not AuditEntry.objects.filter(message__contains="outside Axisor").exists()


# --- 6. kill switch off --------------------------------------------------------------------------------------------


def test_turning_the_kill_switch_off_resumes_entries_only_after_reconciliation(paper, sim, exchange):
    account_reconcile(account_id=paper.pk)
    management.account_kill_switch_set(account=paper, on=True)
    management.account_kill_switch_set(account=paper, on=False)
    paper.refresh_from_db()
    assert paper.entries_halted
    early = _entry(paper, "buy", 10, 5)
    assert _execute(early.pk) is None
    early.refresh_from_db()
    assert early.state == OrderIntent.State.REJECTED
    assert "reconciled" in early.error
    account_reconcile(account_id=paper.pk)
    late = _entry(paper, "buy", 10, 5)
    assert _run(late.pk).state == OrderIntent.State.RECONCILED


# --- 2. and 7. leases and countdowns -------------------------------------------------------------------------------


def test_the_sweep_requeues_only_intents_whose_lease_ran_out(paper):
    now = timezone.now()
    old = now - timedelta(minutes=10)
    busy = _entry(paper, "buy", 1, 1, state=OrderIntent.State.SUBMITTING, attempts=1, next_check_at=now + timedelta(30))
    lost = _entry(paper, "buy", 1, 1, state=OrderIntent.State.UNKNOWN, attempts=1, next_check_at=now - timedelta(1))
    done = _entry(paper, "buy", 1, 1, state=OrderIntent.State.RECONCILED, next_check_at=old)
    OrderIntent.objects.filter(pk__in=[busy.pk, lost.pk, done.pk]).update(created_at=old, updated_at=old)
    due = dict(intents_due(now=now))
    assert lost.pk in due
    assert busy.pk not in due  # old, but a delivery holds its lease: not re-queued mid-delivery
    assert done.pk not in due


def test_the_sweep_expires_entries_that_waited_too_long(paper):
    stale = _entry(paper, "buy", 1, 1)
    OrderIntent.objects.filter(pk=stale.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    intents_sweep(now=timezone.now())
    stale.refresh_from_db()
    assert stale.state == OrderIntent.State.REJECTED
    assert "expired" in stale.error
    # through the intent machine like any other refusal: the log says so, once, and the intent is finished
    entries = AuditEntry.objects.filter(intent=stale)
    assert [(e.outcome, "expired" in e.message) for e in entries] == [(AuditEntry.Outcome.REJECTED, True)]
    assert stale.finished_at is not None
    intents_sweep(now=timezone.now())  # a second sweep finds nothing left to expire
    assert AuditEntry.objects.filter(intent=stale).count() == 1


def test_a_delivery_that_must_retry_moves_its_lease_past_the_retry(paper, sim, exchange):
    account_reconcile(account_id=paper.pk)
    intent = _entry(paper, "buy", 10, 5)
    sim.control.inject_fault("status", method="POST", path=TRADE_PATH, status=429, retry_after=3, count=1)
    countdown = _execute(intent.pk)
    assert countdown is not None
    assert countdown >= 3  # Retry-After honoured
    intent.refresh_from_db()
    assert intent.state == OrderIntent.State.CREATED
    assert intent.next_check_at is not None
    assert intent.next_check_at > timezone.now() + timedelta(seconds=countdown)


def test_countdowns_are_capped_below_the_visibility_timeout():
    assert safe_countdown(10**6) == settings.CELERY_VISIBILITY_TIMEOUT / 2
    assert safe_countdown(3) == 3
    assert safe_countdown(-1) == 0


def _countdown_calls() -> list[str]:
    """Every call in the project's code that passes ``countdown=`` or ``eta=`` without ``safe_countdown``."""
    offenders = []
    for path in ROOT.glob("*/**/*.py"):
        if path.parts[len(ROOT.parts)] in {".venv", "tests", "bench"} or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            for keyword in node.keywords:
                if keyword.arg in ("countdown", "eta"):
                    value = keyword.value
                    wrapped = isinstance(value, ast.Call) and getattr(value.func, "id", "") == "safe_countdown"
                    if not wrapped:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return offenders


def test_lint_every_countdown_goes_through_safe_countdown():
    """docs/reliability.md T09: a countdown or ETA at or past the visibility timeout is redelivered in a loop."""
    assert _countdown_calls() == []
