"""Live and replay agree: one price path through the simulator with the real evaluation and execution path, and
through the replay, gives the same actions (kind, trade, price, amount) and the same final balance.

* in-process (SQLite and PostgreSQL): each tick is evaluated as the tick runner does (``_tick``), and every intent is
  executed by ``order_intent_execute`` before the next tick;
* with a real ``celery worker`` process on Redis (the PostgreSQL + Redis run): the intents go through the broker
  and the worker, and the next tick waits until they are done.

The replay runs on the same path as a tick history, latency 0 (an order lands before the next tick), no funding
(the simulator's funding times are wall-clock 00/08/16 UTC and do not fall inside a test), the same ladder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from unittest import mock

import pytest
from django.conf import settings

from automations.configs import config_to_json
from automations.engine import MarginGuardConfig, TpSlConfig
from automations.models import AuditEntry, Automation, OrderIntent
from automations.services.trades import account_reconcile
from automations.specs import AutomationConfig
from backtest.replay import Candidate, Portfolio, ReplayResult, Rules, TradeSpec, replay
from tests.automations.test_execution import _run, _tick
from tests.automations.test_worker import worker  # noqa: F401 - the real worker process fixture
from tests.backtest.helpers import ticks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

GUARD_PATH = [100000, 99000, 98500, 98000, 97000, 96500, 95000, 94000, 93000, 97000, 101000, 104000, 107000, 109000,
              110500, 112000, 100000]  # fmt: skip
TRAIL_PATH = [100000, 100300, 100800, 101500, 101700, 101400, 101000, 100900, 99000]
GUARD = MarginGuardConfig(
    trigger="liquidation_distance",
    threshold=Decimal(5),
    action="add_margin",
    add_margin_mode="fixed",
    add_margin_amount=3000,
    max_added_per_trade=9000,
    cooldown_seconds=0,
)
TRAIL = TpSlConfig(
    direction="profit", trigger_percent=Decimal(2), action="trailing_stoploss", trailing_distance=Decimal(500)
)
TRADES = (("buy", 100, 10), ("buy", 100, 25), ("sell", 100, 10))

Execute = Callable[[list[int]], None]


def _open(paper, exchange, trades) -> list[TradeSpec]:
    """Open the trades on the simulator as Axisor would (recorded intents, so they are managed)."""
    specs = []
    for number, (side, quantity, leverage) in enumerate(trades):
        client_id = f"agree-{number}"
        trade = exchange.isolated_trade_create(
            type="market", side=side, quantity=quantity, leverage=Decimal(leverage), client_id=client_id
        )
        OrderIntent.objects.create(account=paper, action="open", client_id=client_id, state="reconciled")
        specs.append(TradeSpec(trade.id, side, quantity, Decimal(leverage), entry_price=Decimal(trade.price)))
    account_reconcile(account_id=paper.pk)
    return specs


def _live(paper, sim, exchange, config: AutomationConfig, kind: str, path: list[int], execute: Execute):
    automation = Automation.objects.create(account=paper, name="agree", kind=kind, config=config_to_json(config))
    for price in path:
        intents = _tick(sim, price)
        execute(intents)
        account_reconcile(account_id=paper.pk)
    decisions = [
        entry.decision
        for entry in AuditEntry.objects.filter(automation=automation, event=AuditEntry.Event.DECISION).order_by("id")
    ]
    keys: list[tuple[object, ...]] = [
        _key(d["kind"], d["trade_id"], Decimal(d["inputs"]["last_price"]), d) for d in decisions
    ]
    return keys


def _key(kind: str, trade_id: str, price: Decimal, data: dict[str, object]) -> tuple[object, ...]:
    amount = data.get("amount") or data.get("price") or ""
    return kind, trade_id, price, str(amount)


def _replayed(result: ReplayResult) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = []
    for a in result.actions:
        if a.source == "automation" and a.kind != "skip":
            assert a.outcome == "done", a
            rows.append((a.kind, a.trade_id, a.price, a.value if a.kind != "close" else ""))
    return rows


def _agree(paper, sim, exchange, config, kind, path, trades, execute: Execute):
    specs = _open(paper, exchange, trades)
    balance = exchange.account_get().balance
    live = _live(paper, sim, exchange, config, kind, path, execute)
    result = replay(
        ticks(path),
        Portfolio(balance, tuple(specs)),
        Rules(funding_rate=Decimal(0), latency_ms=0),
        Candidate("agree", kind, config),
    )
    assert _per_tick(live) == _per_tick(_replayed(result))
    assert exchange.account_get().balance == result.final_balance
    running = {t.id: (t.margin, t.liquidation, t.stoploss) for t in exchange.isolated_trades_running_list()}
    assert set(running) == {lineage for lineage, o in result.outcomes.items() if o.closed_by == "still open"}
    return live


def _per_tick(actions: list[tuple[object, ...]]) -> list[list[tuple[object, ...]]]:
    """Actions grouped by tick (consecutive same price; the paths never repeat a price), each group sorted: within
    one evaluation the engine lists trades in the account's order, which live takes from the database."""
    groups: list[list[tuple[object, ...]]] = []
    for action in actions:
        if groups and groups[-1][0][2] == action[2]:
            groups[-1].append(action)
        else:
            groups.append([action])
    return [sorted(group, key=str) for group in groups]


def _in_process(intents: list[int]) -> None:
    for intent_id in intents:
        assert _run(intent_id).state == OrderIntent.State.RECONCILED


@pytest.fixture
def no_broker():
    """The in-process version executes intents itself: nothing goes to a broker."""
    with mock.patch("automations.services.evaluation.enqueue_intents"):
        yield


def test_margin_guard_live_and_replay_take_the_same_actions(paper, sim, exchange, no_broker):
    actions = _agree(paper, sim, exchange, GUARD, "margin_guard", GUARD_PATH, TRADES, _in_process)
    kinds = [a[0] for a in actions]
    assert kinds.count("add_margin") >= 4  # both longs on the way down, the short on the way up


def test_close_guard_live_and_replay_agree(paper, sim, exchange, no_broker):
    close = MarginGuardConfig(trigger="liquidation_distance", threshold=Decimal(4), action="close", cooldown_seconds=0)
    actions = _agree(paper, sim, exchange, close, "margin_guard", GUARD_PATH, TRADES, _in_process)
    assert [a[0] for a in actions] == ["close", "close", "close"]


def test_trailing_stop_live_and_replay_agree(paper, sim, exchange, no_broker):
    actions = _agree(paper, sim, exchange, TRAIL, "tpsl", TRAIL_PATH, (("buy", 100, 10),), _in_process)
    assert [a[0] for a in actions].count("set_stoploss") >= 2


@pytest.mark.skipif(not settings.REDIS_URL, reason="needs Redis: a worker process cannot share memory://")
def test_margin_guard_through_the_real_worker_agrees_with_the_replay(paper, sim, exchange, worker):  # noqa: F811
    def through_worker(intents: list[int]) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = set(OrderIntent.objects.filter(pk__in=intents).values_list("state", flat=True))
            if states <= {OrderIntent.State.RECONCILED}:
                return
            time.sleep(0.1)
        pytest.fail(f"intents {intents} not executed by the worker in time")

    _agree(paper, sim, exchange, GUARD, "margin_guard", GUARD_PATH, TRADES, through_worker)
