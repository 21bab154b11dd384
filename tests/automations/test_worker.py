"""End to end with a real Celery worker process on Redis (the PostgreSQL + Redis run): tick → one order.

Skipped on the embedded default, whose in-process transport cannot reach another process.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings

from automations.models import AuditEntry, OrderIntent, TrackedTrade
from automations.services.trades import account_reconcile
from tests.automations.conftest import margin_guard
from tests.automations.test_execution import TRADE_PATH, _tick
from tests.celery_worker import celery_worker
from tests.celery_worker import children as _children
from tests.celery_worker import wait_for as _wait_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis: a worker process cannot share memory://"),
]


@pytest.fixture
def worker(sim, sim_network, tmp_path) -> Iterator[subprocess.Popen[bytes]]:
    """`celery worker` (prefork, one child) on the test database and the test simulator."""
    with celery_worker(sim, tmp_path) as proc:
        yield proc


def _guarded_long(paper, exchange, client_id: str):
    trade = exchange.isolated_trade_create(
        type="market", side="buy", quantity=100, leverage=Decimal(10), client_id=client_id
    )
    OrderIntent.objects.create(account=paper, action="open", client_id=client_id, state="reconciled")
    account_reconcile(account_id=paper.pk)
    return trade


def test_price_cross_leads_to_exactly_one_close_through_the_worker(paper, sim, exchange, worker):
    trade = _guarded_long(paper, exchange, "w-open-1")
    guard = margin_guard(paper, threshold="5")
    (intent_id,) = _tick(sim, 95000)
    intent = _wait_for(lambda: OrderIntent.objects.filter(pk=intent_id, state=OrderIntent.State.RECONCILED).first())
    assert intent.attempts == 1
    assert exchange.isolated_trades_running_list() == ()
    assert TrackedTrade.objects.get(trade_id=trade.id).state == TrackedTrade.State.CLOSED
    assert AuditEntry.objects.filter(automation=guard, event=AuditEntry.Event.DECISION).count() == 1


def test_worker_child_killed_right_after_the_post_reconciles_to_one_trade(paper, sim, exchange, worker):
    account_reconcile(account_id=paper.pk)
    intent = OrderIntent.objects.create(
        account=paper, action="open", protective=False, params={"side": "buy", "leverage": "10", "quantity": 42}
    )
    # the exchange accepts the order but answers only after 10 s: long enough to kill the worker in between
    sim.control.inject_fault("accept_then_delay", method="POST", path=TRADE_PATH, seconds=10, count=1)
    from automations.tasks import order_intent_enqueue

    order_intent_enqueue(intent.pk)
    _wait_for(lambda: sim.control.requests_for_client_id(intent.client_id) == 1)
    for child in _children(worker.pid):
        os.kill(child, signal.SIGKILL)
    # the task is redelivered (reject on worker lost), finds SUBMITTING and reconciles instead of re-sending
    final = _wait_for(
        lambda: OrderIntent.objects.filter(pk=intent.pk, state=OrderIntent.State.RECONCILED).first(), timeout=60
    )
    assert sim.control.requests_for_client_id(intent.client_id) == 1
    (running,) = exchange.isolated_trades_running_list()
    assert running.client_id == intent.client_id
    assert final.trade_id == running.id
