"""Running trades you can act on (#15): close, set SL/TP, add margin and close all, each confirmed on a page that
carries its clientId, checked against the exchange's rules before anything is asked, then one order intent sent
exactly once by the execution service, and the history says "by hand in Axisor"."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.test import Client

from accounts.models import ExchangeAccount, User
from automations.models import AuditEntry, GlobalSwitch, OrderIntent, TrackedTrade
from automations.services.execution import order_intent_execute
from automations.services.trades import account_reconcile
from history.models import ClosedTrade
from history.services import history_sync
from lnmarkets.client import RestClient
from realtime.market import store_market_state
from tests.realtime.conftest import market

pytestmark = pytest.mark.django_db


@pytest.fixture
def long_trade(paper: ExchangeAccount, exchange: RestClient) -> TrackedTrade:
    exchange.isolated_trade_create(type="market", side="buy", quantity=100, leverage=Decimal(10))
    account_reconcile(account_id=paper.pk)
    store_market_state(market(last="100000"))
    return TrackedTrade.objects.get(account=paper, state=TrackedTrade.State.RUNNING)


def _client_id(page: str) -> str:
    found = re.search(r'name="client_id" value="(ax-[0-9a-f]{32})"', page)
    assert found, page
    return found.group(1)


def _confirm(logged: Client, trade: TrackedTrade, action: str, **fields: str) -> tuple[str, str]:
    url = f"/realtime/positions/{trade.pk}/{action}/"
    client_id = _client_id(logged.get(url).content.decode())
    response = logged.post(url, {"client_id": client_id, **fields}, follow=True)
    return client_id, response.content.decode()


def test_close_by_hand_is_one_intent_sent_once_and_the_history_says_by_hand(
    logged: Client, paper: ExchangeAccount, long_trade: TrackedTrade, exchange: RestClient
) -> None:
    GlobalSwitch.objects.create(pk=1, kill_switch=True)  # closes work under the kill switch
    client_id, page = _confirm(logged, long_trade, "close")
    assert "Asked for your long of 100 USD" in page
    intent = OrderIntent.objects.get(client_id=client_id)
    assert (intent.action, intent.trade_id, intent.automation) == ("close", long_trade.trade_id, None)
    assert intent.params["source"] == "cockpit"
    assert AuditEntry.objects.filter(intent=intent).exists()
    # The same confirmation again (a double click, a reload): nothing asked twice.
    again = logged.post(f"/realtime/positions/{long_trade.pk}/close/", {"client_id": client_id}, follow=True)
    assert "nothing sent twice" in again.content.decode()
    assert OrderIntent.objects.filter(trade_id=long_trade.trade_id).count() == 1

    order_intent_execute(intent_id=intent.pk)
    intent.refresh_from_db()
    assert intent.state in (OrderIntent.State.ACKED, OrderIntent.State.RECONCILED)
    assert exchange.isolated_trades_running_list() == ()
    history_sync(account_id=paper.pk)
    assert ClosedTrade.objects.get(trade_id=long_trade.trade_id).closed_by == ClosedTrade.ClosedBy.MANUAL


def test_stoploss_is_checked_against_the_exchange_rules_before_asking(logged: Client, long_trade: TrackedTrade) -> None:
    for price, error in (
        ("100500", "must be below the current price"),
        ("80000", "at or above its liquidation price"),
        ("95000.3", "steps of 0.5"),
        ("abc", "Enter a number."),
    ):
        _cid, page = _confirm(logged, long_trade, "stoploss", price=price)
        assert error in page, price
    assert not OrderIntent.objects.exists()
    client_id, _page = _confirm(logged, long_trade, "stoploss", price="95000")
    intent = OrderIntent.objects.get(client_id=client_id)
    assert (intent.action, intent.params["price"]) == ("set_stoploss", "95000")


def test_takeprofit_and_add_margin(logged: Client, paper: ExchangeAccount, long_trade: TrackedTrade) -> None:
    _cid, page = _confirm(logged, long_trade, "takeprofit", price="99000")
    assert "must be above the current price" in page
    client_id, _page = _confirm(logged, long_trade, "takeprofit", price="110000")
    assert OrderIntent.objects.get(client_id=client_id).action == "set_takeprofit"
    _cid, page = _confirm(logged, long_trade, "add-margin", amount=str(10**11))
    assert "sats are free on this account" in page
    client_id, _page = _confirm(logged, long_trade, "add-margin", amount="5000")
    intent = OrderIntent.objects.get(client_id=client_id)
    assert (intent.action, intent.params["amount"]) == ("add_margin", 5000)


def test_close_all_asks_one_close_per_running_trade_once(
    logged: Client, paper: ExchangeAccount, exchange: RestClient
) -> None:
    for side in ("buy", "sell"):
        exchange.isolated_trade_create(type="market", side=side, quantity=100, leverage=Decimal(10))
    account_reconcile(account_id=paper.pk)
    url = f"/realtime/accounts/{paper.pk}/close-all/"
    page = logged.get(url).content.decode()
    fields = dict(re.findall(r'name="(client_id_\d+)" value="(ax-[0-9a-f]{32})"', page))
    assert len(fields) == 2
    logged.post(url, fields)
    logged.post(url, fields)
    intents = OrderIntent.objects.filter(account=paper, action="close")
    assert intents.count() == 2
    assert {i.trade_id for i in intents} == set(TrackedTrade.objects.values_list("trade_id", flat=True))


def test_someone_elses_trade_or_a_bad_request_is_refused(
    logged: Client, long_trade: TrackedTrade, bob: User, make_account
) -> None:
    assert logged.get(f"/realtime/positions/{long_trade.pk}/explode/").status_code == 404
    assert logged.get(f"/realtime/positions/{long_trade.pk + 999}/close/").status_code == 404
    response = logged.post(f"/realtime/positions/{long_trade.pk}/close/", {"client_id": "ax-not-hex"})
    assert "out of date" in response.content.decode()
    bobs = Client()
    bobs.force_login(bob)
    assert bobs.get(f"/realtime/positions/{long_trade.pk}/close/").status_code == 404
    assert bobs.get(f"/realtime/accounts/{long_trade.account_id}/close-all/").status_code == 404
    assert not OrderIntent.objects.exists()


def test_remove_a_stoploss_by_hand(logged: Client, paper: ExchangeAccount, exchange: RestClient) -> None:
    trade = exchange.isolated_trade_create(
        type="market", side="buy", quantity=100, leverage=Decimal(10), stoploss=Decimal(95000)
    )
    account_reconcile(account_id=paper.pk)
    store_market_state(market(last="100000"))
    row = TrackedTrade.objects.get(trade_id=trade.id)
    url = f"/realtime/positions/{row.pk}/stoploss/"
    page = logged.get(url).content.decode()
    assert 'id="remove"' in page
    _cid, empty = _confirm(logged, row, "stoploss")
    assert "Enter a price." in empty
    client_id, _page = _confirm(logged, row, "stoploss", remove="on")
    intent = OrderIntent.objects.get(client_id=client_id)
    assert intent.params["price"] == "0"
    order_intent_execute(intent_id=intent.pk)
    (running,) = exchange.isolated_trades_running_list()
    assert running.stoploss == 0
    # No take-profit to remove: the page offers none, and a forged request is refused.
    assert 'id="remove"' not in logged.get(f"/realtime/positions/{row.pk}/takeprofit/").content.decode()
    _cid, page = _confirm(logged, row, "takeprofit", remove="on")
    assert "There is nothing to remove." in page
