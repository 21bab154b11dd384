"""The dashboard chart's data against the simulator: candles from its OHLC endpoint, the lines of the account's
running trades (entry, liquidation, SL, TP) and of its automations' triggers, open/close markers; the market
publisher's true 24 h window."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from accounts.models import ExchangeAccount, User
from automations.configs import config_to_json
from automations.engine import AutoEntryConfig, MarginGuardConfig
from automations.models import Automation
from automations.services.trades import account_reconcile
from history.models import ClosedTrade
from lnmarkets import maths
from lnmarkets.client import RestClient
from lnmarkets.simulator import RunningSimulator
from realtime.candles import day_window
from realtime.market import MarketPublisher

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_cached_candles() -> None:
    cache.clear()


def test_candles_come_from_the_exchanges_ohlc_endpoint(
    logged: Client, paper: ExchangeAccount, exchange: RestClient, sim: RunningSimulator
) -> None:
    sim.control.set_price(100500)
    sim.control.set_price(99500)
    body = logged.get("/realtime/api/chart/", {"account": str(paper.pk), "range": "5m"}).json()
    assert body["range"] == "5m"
    assert body["candles_unavailable"] is False
    expected = exchange.futures_candles_list(range="5m", limit=1000).data
    assert [c["time"] for c in body["candles"]] == sorted(int(c.time.timestamp()) for c in expected)
    last = body["candles"][-1]
    assert Decimal(last["high"]) >= Decimal(100500)
    assert Decimal(last["low"]) <= Decimal(99500)
    assert Decimal(last["close"]) == Decimal(99500)


def test_levels_of_running_trades_and_of_automation_triggers(
    logged: Client, paper: ExchangeAccount, exchange: RestClient
) -> None:
    paper.manage_external_trades = True
    paper.save()
    trade = exchange.isolated_trade_create(
        type="market",
        side="buy",
        quantity=100,
        leverage=Decimal(10),
        stoploss=Decimal(95000),
        takeprofit=Decimal(110000),
    )
    account_reconcile(account_id=paper.pk)
    guard_config = MarginGuardConfig(trigger="liquidation_distance", threshold=Decimal(5), action="close")
    Automation.objects.create(
        account=paper, name="night watch", kind="margin_guard", config=config_to_json(guard_config)
    )
    entry_config = AutoEntryConfig(
        side="buy", leverage=Decimal(10), quantity=100, margin=None, trigger="price_below", trigger_price=Decimal(97000)
    )
    Automation.objects.create(account=paper, name="dip buyer", kind="auto_entry", config=config_to_json(entry_config))

    levels = logged.get("/realtime/api/chart/", {"account": paper.pk}).json()["levels"]
    by_kind = {(level["kind"], level["title"]): level for level in levels}
    assert Decimal(by_kind[("entry", "Long 100 entry")]["price"]) == trade.entry_price
    assert Decimal(by_kind[("liquidation", "Long 100 liq.")]["price"]) == trade.liquidation
    assert Decimal(by_kind[("stoploss", "Long 100 SL")]["price"]) == Decimal(95000)
    assert Decimal(by_kind[("takeprofit", "Long 100 TP")]["price"]) == Decimal(110000)
    assert Decimal(by_kind[("trigger", "dip buyer")]["price"]) == Decimal(97000)
    guard = by_kind[("trigger", "night watch")]
    assert guard["trade_id"] == trade.id
    # A long 5 % above its liquidation: the guard acts at liquidation / 0.95.
    assert Decimal(guard["price"]) == maths.round_to_tick(trade.liquidation / Decimal("0.95"))


def test_markers_for_opens_and_closes(logged: Client, paper: ExchangeAccount, exchange: RestClient) -> None:
    now = timezone.now()
    ClosedTrade.objects.create(
        account=paper, trade_id="t1", side="sell", quantity=50, leverage=Decimal(5), margin=1000,
        entry_price=Decimal(100000), exit_price=Decimal(99000), pl=50, opened_at=now,
        closed_at=now, closed_by="outside",
    )  # fmt: skip
    markers = logged.get("/realtime/api/chart/", {"account": paper.pk}).json()["markers"]
    assert [(m["kind"], m["side"], m["price"]) for m in markers] == [
        ("open", "sell", "100000.0"),
        ("close", "sell", "99000.0"),
    ]
    assert markers[1]["text"] == "closed +50 sats"


def test_bad_requests_are_clear_errors(logged: Client, paper: ExchangeAccount, bob: User, make_account) -> None:
    foreign = make_account(bob, label="bobs")
    assert logged.get("/realtime/api/chart/", {"account": str(paper.pk), "range": "2y"}).status_code == 400
    assert logged.get("/realtime/api/chart/", {"account": foreign.pk}).status_code == 404
    assert logged.get("/realtime/api/chart/", {"account": "1e9"}).status_code == 404
    assert Client().get("/realtime/api/chart/").status_code == 401


def test_the_exchange_down_says_so_instead_of_failing(
    logged: Client, paper: ExchangeAccount, sim: RunningSimulator
) -> None:
    sim.control.inject_fault("status", method="GET", path="/v3/futures/candles", status=503, count=10)
    body = logged.get("/realtime/api/chart/", {"account": paper.pk}).json()
    assert body["candles_unavailable"] is True
    assert body["candles"] == []


class _Feed:
    state = "live"

    def subscribe(self, callback):
        return lambda: None

    def latest(self):
        return None


def test_the_publisher_starts_its_24h_window_from_the_exchanges_minutes(
    paper: ExchangeAccount, sim: RunningSimulator, sim_network: None
) -> None:
    sim.control.set_price(101000)
    sim.control.set_price(98000)
    sim.control.set_price(99000)
    buckets = day_window("simulator")
    publisher = MarketPublisher(cast(Any, _Feed()), "simulator", history=lambda: buckets)
    assert publisher.seed_window() == len(buckets) >= 1
    high, low, _change, start = publisher._stats(timezone.now(), None)
    assert high is not None
    assert low is not None
    # The window's extremes are the exchange's minute candles' (this session's simulator may hold other prices too).
    assert (Decimal(high), Decimal(low)) == (max(b[2] for b in buckets), min(b[3] for b in buckets))
    assert Decimal(high) >= 101000
    assert Decimal(low) <= 98000
    assert start == buckets[0][0].isoformat()
    assert publisher.seed_window() == 0  # once
