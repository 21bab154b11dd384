"""The dashboard snapshot against the simulator: trades and balance as the exchange has them, after reconciliation."""

from __future__ import annotations

from decimal import Decimal

import pytest
from channels.db import database_sync_to_async

from accounts.models import ExchangeAccount, User
from automations.services.trades import account_reconcile
from lnmarkets import maths
from lnmarkets.client import RestClient
from lnmarkets.simulator import RunningSimulator
from realtime.market import store_market_state
from tests.realtime.conftest import connect_as, market

pytestmark = pytest.mark.django_db(transaction=True)


def _open_by_hand_and_reconcile(exchange: RestClient, account: ExchangeAccount) -> None:
    exchange.isolated_trade_create(type="market", side="buy", quantity=100, leverage=Decimal(10))
    exchange.isolated_trade_create(type="market", side="sell", quantity=50, leverage=Decimal(5))
    account_reconcile(account_id=account.pk)


async def test_snapshot_matches_the_simulators_state(
    alice: User, paper: ExchangeAccount, exchange: RestClient, sim: RunningSimulator
) -> None:
    await database_sync_to_async(_open_by_hand_and_reconcile)(exchange, paper)
    ticker = await database_sync_to_async(exchange.futures_ticker_get)()
    last = str(ticker.last_price)
    await database_sync_to_async(store_market_state)(market(last=last))
    running = {t.id: t for t in await database_sync_to_async(exchange.isolated_trades_running_list)()}
    balance = (await database_sync_to_async(exchange.account_get)()).balance

    comm, snapshot = await connect_as(alice)
    data = snapshot["data"]
    assert data["account"]["id"] == paper.pk
    items = {p["trade_id"]: p for p in data["positions"]["items"]}
    assert set(items) == set(running)
    assert len(running) == 2
    for trade_id, trade in running.items():
        shown = items[trade_id]
        assert shown["side"] == trade.side
        assert shown["quantity"] == trade.quantity
        assert Decimal(shown["entry_price"]) == trade.price
        assert Decimal(shown["liquidation"]) == trade.liquidation
        assert shown["margin"] == trade.margin
        assert shown["pl"] == maths.pnl(trade.side, trade.quantity, trade.price, Decimal(last))
    assert data["balance"]["free"] == balance
    assert data["balance"]["in_margin"] == sum(t.margin for t in running.values())
    assert data["market"]["last"] == last
    await comm.disconnect()
