"""The exchange's own events through the private stream manager, on the real simulator: a TP, an SL, a liquidation
and a close by hand at the exchange close the tracked trade, write one audit entry and reach the owner's dashboard
group without reconciliation; reconnect after the exchange drops the socket; the status while down; one audit
entry when reconciliation runs after the event (and before it)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from accounts.models import ExchangeAccount
from accounts.stream_status import stream_status
from automations.models import AuditEntry, OrderIntent, TrackedTrade
from automations.services.exchange_events import trade_event_apply
from automations.services.trades import account_reconcile, tracked_trade_upsert
from automations.stream_manager import ExchangeStreamManager
from lnmarkets.client import RestClient
from lnmarkets.schemas import StreamTradeEvent
from lnmarkets.simulator import RunningSimulator
from tests.realtime.conftest import capture_group_sends

pytestmark = pytest.mark.django_db(transaction=True)


_managers: list[ExchangeStreamManager] = []


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Drive the manager (sync and apply in this thread: SQLite's in-memory test database is not shared safely
    between writing threads) until ``predicate()``."""
    deadline = time.monotonic() + timeout
    while True:
        for mgr in _managers:
            mgr.sync()
            mgr.pump()
        if predicate():
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every dashboard group message, as the bus hands it to the channel layer."""
    out: list[tuple[str, dict[str, Any]]] = []
    capture_group_sends(monkeypatch, out)
    return out


@pytest.fixture
def gaps() -> list[int]:
    return []


@pytest.fixture
def manager(paper: ExchangeAccount, gaps: list[int]) -> Iterator[ExchangeStreamManager]:
    mgr = ExchangeStreamManager(["simulator"], reconcile_after_gap=gaps.append, backoff_initial=0.2, backoff_max=0.5)
    mgr.start(threads=False)
    _managers.append(mgr)
    wait_until(lambda: stream_status(paper.pk) == "live")
    yield mgr
    _managers.remove(mgr)
    mgr.stop()


def _track(paper: ExchangeAccount, exchange: RestClient, **order: Any) -> str:
    trade = exchange.isolated_trade_create(type="market", side="buy", quantity=100, **order)
    tracked_trade_upsert(paper, trade, managed=True)
    return trade.id


def _entries(trade_id: str) -> list[AuditEntry]:
    return [
        e for e in AuditEntry.objects.filter(event=AuditEntry.Event.RECONCILE) if e.inputs.get("trade_id") == trade_id
    ]


def _closed(trade_id: str) -> bool:
    return TrackedTrade.objects.filter(trade_id=trade_id, state=TrackedTrade.State.CLOSED).exists()


CASES = [
    ("takeprofit", {"leverage": 10, "takeprofit": Decimal(101000)}, 101500, "hit its take-profit"),
    ("stoploss", {"leverage": 10, "stoploss": Decimal(99500)}, 99000, "hit its stop-loss"),
    ("liquidation", {"leverage": 100}, 98000, "was liquidated"),
]


@pytest.mark.parametrize(("reason", "order", "price", "words"), CASES, ids=[c[0] for c in CASES])
def test_exchange_trigger_closes_the_tracked_trade_at_once(
    paper, exchange, sim: RunningSimulator, manager, sent, reason, order, price, words
) -> None:
    trade_id = _track(paper, exchange, **order)
    sim.control.set_price(price)
    wait_until(lambda: _closed(trade_id) and bool(_entries(trade_id)))
    row = TrackedTrade.objects.get(trade_id=trade_id)
    assert row.closed_reason == reason
    assert not row.closed_by_axisor
    assert row.exit_price is not None
    [entry] = _entries(trade_id)
    assert words in entry.message
    assert entry.inputs["closed_reason"] == reason
    assert entry.inputs["source"] == "stream"
    assert Decimal(entry.inputs["exit_price"]) == row.exit_price
    assert entry.inputs["pnl"] == row.pl
    if reason == "liquidation":
        assert row.pl == -row.margin
    wait_until(lambda: any(m.get("entry_id") == entry.pk for _, m in sent))
    owner_group = f"user.{paper.owner_id}"
    kinds = {m["type"] for g, m in sent if g == owner_group}
    assert {"account.changed", "automation.log"} <= kinds
    paper.refresh_from_db()
    assert paper.reconciled_at is None  # reconciliation never ran


def test_close_by_hand_at_the_exchange_is_outside_axisor(paper, exchange, manager, sent) -> None:
    trade_id = _track(paper, exchange, leverage=10)
    exchange.isolated_trade_close(trade_id)
    wait_until(lambda: bool(_entries(trade_id)))
    [entry] = _entries(trade_id)
    assert "was closed outside Axisor" in entry.message
    assert entry.inputs["closed_reason"] == "outside"
    row = TrackedTrade.objects.get(trade_id=trade_id)
    assert row.state == TrackedTrade.State.CLOSED
    assert row.closed_reason == "closed"
    assert not row.closed_by_axisor


def test_close_by_our_own_intent_is_axisors(paper, exchange, manager) -> None:
    trade_id = _track(paper, exchange, leverage=10)
    OrderIntent.objects.create(
        account=paper, action=OrderIntent.Action.CLOSE, protective=True, trade_id=trade_id, attempts=1, params={}
    )
    exchange.isolated_trade_close(trade_id)
    wait_until(lambda: _closed(trade_id))
    assert TrackedTrade.objects.get(trade_id=trade_id).closed_by_axisor
    wait_until(lambda: manager.applied >= 1)  # the event was applied: it wrote no audit entry of its own
    assert _entries(trade_id) == []


def test_reconciliation_after_the_event_writes_no_second_entry(paper, exchange, sim, manager) -> None:
    trade_id = _track(paper, exchange, leverage=10, takeprofit=Decimal(101000))
    sim.control.set_price(101500)
    wait_until(lambda: bool(_entries(trade_id)))
    account_reconcile(account_id=paper.pk)
    assert len(_entries(trade_id)) == 1
    assert TrackedTrade.objects.get(trade_id=trade_id).closed_reason == "takeprofit"


def test_event_after_reconciliation_writes_no_second_entry(paper, exchange, sim) -> None:
    trade_id = _track(paper, exchange, leverage=10, takeprofit=Decimal(101000))
    sim.control.set_price(101500)
    account_reconcile(account_id=paper.pk)
    assert len(_entries(trade_id)) == 1
    closed = exchange.isolated_trades_closed_list(limit=10).data[0]
    event = StreamTradeEvent.model_validate(
        {
            "pair": "btc_usd",
            "event": "takeprofit",
            "trade": {"id": trade_id, "closedAt": 1, "closingFee": 0, "pl": closed.pl, "exitPrice": 101000},
        }
    )
    assert trade_event_apply(paper.pk, event) == "already"
    assert len(_entries(trade_id)) == 1


def test_reconnect_after_the_exchange_drops_the_socket(paper, exchange, sim, manager, gaps) -> None:
    sim.control.inject_fault("stream_drop", seconds=1.5)
    wait_until(lambda: stream_status(paper.pk) == "down")
    wait_until(lambda: stream_status(paper.pk) == "live")
    assert gaps == [paper.pk]  # the gap is filled by one reconciliation
    trade_id = _track(paper, exchange, leverage=10)
    exchange.isolated_trade_close(trade_id)
    wait_until(lambda: bool(_entries(trade_id)))


def test_disabled_account_loses_its_socket_and_a_new_one_gets_one(
    paper, manager, alice, sim, make_account: Callable[..., ExchangeAccount]
) -> None:
    ExchangeAccount.objects.filter(pk=paper.pk).update(is_enabled=False)
    wait_until(lambda: stream_status(paper.pk) == "off")
    assert paper.pk not in manager.streams.states()
    from tests.fixtures_simulator import exchange_account_for

    other = exchange_account_for(alice, sim.control.create_account(balance=1000), "second")
    wait_until(lambda: stream_status(other.pk) == "live")
