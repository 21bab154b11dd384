"""§9.7 worked example and the TS live-test example, exactly, through the REST API."""

from __future__ import annotations

import pytest

from .helpers import Signed

EXPECTED = {
    # side: (liquidation, debited, maintenance after fill, pl at 105000, credited)
    "buy": (90909, 10210, 110, 4762, 14777),
    "sell": (111111, 10190, 90, -4762, 5233),
}


@pytest.mark.parametrize("side", ["buy", "sell"])
def test_worked_example_100_usd_at_10x(sim, sim_account, side):
    client = Signed(sim, sim_account)
    liquidation, debited, maintenance, pl, credited = EXPECTED[side]
    before = client.balance()
    trade = client.ok_trade(type="market", side=side, quantity=100, leverage=10)
    assert client.balance() == before - debited
    assert trade["running"] is True
    assert trade["open"] is False
    assert trade["entryPrice"] == 100000
    assert trade["margin"] == 10000
    assert trade["entryMargin"] == 10000
    assert trade["liquidation"] == liquidation
    assert trade["openingFee"] == 100
    assert trade["maintenanceMargin"] == maintenance
    assert trade["closingFee"] == 0

    sim.control.set_price(105000)
    [running] = client.running()
    assert running["pl"] == pl
    after_fill = client.balance()
    reply = client.post("/futures/isolated/trade/close", {"id": trade["id"]})
    assert reply.status == 200, reply.body
    closed = reply.body
    assert closed["closed"] is True
    assert closed["running"] is False
    assert closed["exitPrice"] == 105000
    assert closed["closingFee"] == 95
    assert closed["pl"] == pl
    assert closed["closedAt"] is not None
    assert client.balance() - after_fill == credited
    assert client.balance() - before == credited - debited


def test_ts_live_example_limit_buy_1_usd_at_100x(sim, sim_account):
    client = Signed(sim, sim_account)
    trade = client.ok_trade(type="limit", side="buy", quantity=1, leverage=100, price=100000, clientId="ts-live")
    assert trade["open"] is True
    assert trade["running"] is False
    assert trade["entryPrice"] == 100000
    assert trade["price"] == 100000
    assert trade["entryMargin"] == 10
    assert trade["liquidation"] == 99010
    assert trade["maintenanceMargin"] == 2
    assert trade["openingFee"] == 0
    assert trade["closingFee"] == 0
    assert trade["pl"] == 0
    assert trade["takeprofit"] == 0
    assert trade["sumFundingFees"] == 0
    assert trade["filledAt"] is None
    assert trade["exitPrice"] is None
    assert trade["closedAt"] is None
    assert trade["clientId"] == "ts-live"
    assert "uid" not in trade
    assert client.balance() == 1_000_000 - 12


def test_one_funding_at_001_percent_long_pays_10_short_receives_10(sim, sim_account):
    client = Signed(sim, sim_account)
    long = client.ok_trade(type="market", side="buy", quantity=100, leverage=10)
    short = client.ok_trade(type="market", side="sell", quantity=100, leverage=10)
    before = client.balance()
    sim.control.settle_funding("0.0001")
    by_id = {t["id"]: t for t in client.running()}
    assert by_id[long["id"]]["margin"] == 9990
    assert by_id[long["id"]]["sumFundingFees"] == 10
    assert by_id[long["id"]]["liquidation"] > long["liquidation"]
    assert by_id[short["id"]]["margin"] == 10000
    assert by_id[short["id"]]["sumFundingFees"] == -10
    assert client.balance() == before + 10
    fees = client.get("/futures/isolated/funding-fees").body["data"]
    assert sorted(f["fee"] for f in fees) == [-10, 10]
