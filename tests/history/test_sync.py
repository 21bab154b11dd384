"""History sync against the simulator: every closed trade lands in ClosedTrade with its PnL, fees and who closed it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import ExchangeAccount
from automations.models import Automation, OrderIntent
from history.models import BalancePoint, ClosedTrade
from history.services import history_sync
from lnmarkets.client import RestClient
from lnmarkets.simulator import RunningSimulator

pytestmark = pytest.mark.django_db


def _open(exchange: RestClient, quantity: int = 100) -> str:
    return exchange.isolated_trade_create(type="market", side="buy", quantity=quantity, leverage=Decimal(10)).id


def test_a_trade_closed_outside_axisor_is_in_the_history_with_its_pnl(
    paper: ExchangeAccount, exchange: RestClient, sim: RunningSimulator
) -> None:
    trade_id = _open(exchange)
    sim.control.set_price(101000)
    closed = exchange.isolated_trade_close(trade_id)

    result = history_sync(account_id=paper.pk)

    assert result.new == 1
    row = ClosedTrade.objects.get(account=paper, trade_id=trade_id)
    assert row.closed_by == ClosedTrade.ClosedBy.OUTSIDE
    assert row.pl == closed.pl > 0
    assert row.exit_price == closed.exit_price
    assert row.entry_price == closed.entry_price
    assert row.opening_fee == closed.opening_fee > 0
    assert row.closing_fee == closed.closing_fee > 0
    assert row.net_pl == closed.pl - closed.opening_fee - closed.closing_fee - closed.sum_funding_fees
    assert row.pl_percent == (Decimal(row.net_pl) * 100 / Decimal(row.margin)).quantize(Decimal("0.01"))
    assert row.opened_at is not None
    assert row.closed_at == closed.closed_at
    # A second sync changes nothing and adds nothing.
    assert history_sync(account_id=paper.pk).new == 0
    assert ClosedTrade.objects.filter(account=paper).count() == 1


def test_who_closed_it_automation_by_hand_takeprofit_liquidation_and_canceled(
    paper: ExchangeAccount, exchange: RestClient, sim: RunningSimulator
) -> None:
    guard = Automation.objects.create(account=paper, name="night watch", kind=Automation.Kind.MARGIN_GUARD, config={})
    by_guard, by_hand, by_tp, liquidated = (_open(exchange) for _ in range(4))
    for trade_id, automation in ((by_guard, guard), (by_hand, None)):
        OrderIntent.objects.create(
            account=paper,
            automation=automation,
            action=OrderIntent.Action.CLOSE,
            trade_id=trade_id,
            attempts=1,
            state=OrderIntent.State.RECONCILED,
        )
        exchange.isolated_trade_close(trade_id)
    exchange.isolated_trade_takeprofit_set(by_tp, Decimal(102000))
    limit = exchange.isolated_trade_create(
        type="limit", side="buy", quantity=100, leverage=Decimal(10), price=Decimal(50000)
    ).id
    exchange.isolated_trade_cancel(limit)
    sim.control.set_price(102500)  # the take-profit fires
    sim.control.set_price(80000)  # the last long is liquidated

    history_sync(account_id=paper.pk)

    rows = {r.trade_id: r for r in ClosedTrade.objects.filter(account=paper)}
    assert rows[by_guard].closed_by == ClosedTrade.ClosedBy.AUTOMATION
    assert rows[by_guard].automation == guard
    assert rows[by_guard].automation_name == "night watch"
    assert rows[by_hand].closed_by == ClosedTrade.ClosedBy.MANUAL
    assert rows[by_tp].closed_by == ClosedTrade.ClosedBy.TAKEPROFIT
    assert rows[liquidated].closed_by == ClosedTrade.ClosedBy.LIQUIDATION
    assert rows[liquidated].pl == -rows[liquidated].margin
    assert rows[limit].closed_by == ClosedTrade.ClosedBy.CANCELED
    assert rows[limit].canceled
    assert rows[limit].pl_percent is None
    # The automation is deleted later: the row still names it.
    guard.delete()
    history_sync(account_id=paper.pk)
    kept = ClosedTrade.objects.get(trade_id=by_guard)
    assert (kept.closed_by, kept.automation_id, kept.automation_name) == ("automation", None, "night watch")


def test_the_sync_records_the_balance_once_while_it_is_unchanged(paper: ExchangeAccount, exchange: RestClient) -> None:
    _open(exchange)
    history_sync(account_id=paper.pk)
    history_sync(account_id=paper.pk)
    points = list(BalancePoint.objects.filter(account=paper))
    assert len(points) == 1
    account = exchange.account_get()
    running = exchange.isolated_trades_running_list()
    assert points[0].free == account.balance
    assert points[0].in_margin == sum(t.margin for t in running) > 0


def test_the_sync_pages_through_more_than_one_page(
    paper: ExchangeAccount, exchange: RestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("history.services.PAGE_LIMIT", 2)
    ids = [_open(exchange, quantity=10) for _ in range(5)]
    for trade_id in ids:
        exchange.isolated_trade_close(trade_id)
    assert history_sync(account_id=paper.pk).new == 5
    assert set(ClosedTrade.objects.values_list("trade_id", flat=True)) == set(ids)
