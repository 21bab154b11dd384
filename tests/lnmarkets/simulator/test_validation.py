"""Every §9.7 rule rejects what it should and accepts its boundary (price 100 000, no spread in the first bucket)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lnmarkets.maths import Side, fee_reserves, initial_liquidation_price, margin_from_quantity

from .helpers import Signed

BASE = {"type": "market", "side": "buy", "quantity": 100, "leverage": 10}


def order(**changes):
    body = {**BASE, **changes}
    return {k: v for k, v in body.items() if v is not None}


NEW_TRADE_CASES = [
    # leverage 1–100 (fractional allowed)
    ("leverage 0.99", order(leverage=Decimal("0.99")), 400),
    ("leverage 1", order(leverage=1), 200),
    ("leverage 2.5", order(leverage=Decimal("2.5")), 200),
    ("leverage 100", order(leverage=100), 200),
    ("leverage 100.01", order(leverage=Decimal("100.01")), 400),
    ("leverage 0", order(leverage=0), 400),
    # quantity 1–500 000
    ("quantity 0", order(quantity=0), 400),
    ("quantity 1", order(quantity=1), 200),
    ("quantity 500000", order(quantity=500_000, leverage=100), 200),
    ("quantity 500001", order(quantity=500_001, leverage=100), 400),
    ("quantity fractional", order(quantity=Decimal("1.5")), 400),
    # exactly one of quantity / margin
    ("both quantity and margin", order(margin=10_000), 400),
    ("neither quantity nor margin", order(quantity=None), 400),
    ("margin only", order(quantity=None, margin=10_000), 200),
    ("margin too small for 1 USD", order(quantity=None, margin=1, leverage=1), 400),
    # price iff limit
    ("limit without price", order(type="limit"), 400),
    ("market with price", order(price=100_000), 400),
    ("limit with price", order(type="limit", price=99_000), 200),
    # 0.5 tick
    ("price off tick", order(type="limit", price=Decimal("99000.3")), 400),
    ("price on half tick", order(type="limit", price=Decimal("99000.5")), 200),
    ("takeprofit off tick", order(takeprofit=Decimal("110000.25")), 400),
    ("stoploss off tick", order(stoploss=Decimal("95000.1")), 400),
    # long SL/TP: liquidation (90909) ≤ SL < entry; TP > entry
    ("long SL at liquidation", order(stoploss=90909), 200),
    ("long SL below liquidation", order(stoploss=Decimal("90908.5")), 400),
    ("long SL just below entry", order(stoploss=Decimal("99999.5")), 200),
    ("long SL at entry", order(stoploss=100_000), 400),
    ("long TP at entry", order(takeprofit=100_000), 400),
    ("long TP just above entry", order(takeprofit=Decimal("100000.5")), 200),
    # short: entry < SL ≤ liquidation (111111); TP < entry
    ("short SL at entry", order(side="sell", stoploss=100_000), 400),
    ("short SL just above entry", order(side="sell", stoploss=Decimal("100000.5")), 200),
    ("short SL at liquidation", order(side="sell", stoploss=111_111), 200),
    ("short SL above liquidation", order(side="sell", stoploss=Decimal("111111.5")), 400),
    ("short TP at entry", order(side="sell", takeprofit=100_000), 400),
    ("short TP just below entry", order(side="sell", takeprofit=Decimal("99999.5")), 200),
    # limit orders are checked against their own price
    ("limit long SL vs limit price", order(type="limit", price=90_000, stoploss=90_000), 400),
    ("limit long TP vs limit price", order(type="limit", price=90_000, takeprofit=Decimal("90000.5")), 200),
    # clientId ≤ 64
    ("clientId 64", order(clientId="x" * 64), 200),
    ("clientId 65", order(clientId="x" * 65), 400),
    ("clientId not a string", order(clientId=5), 400),
    # enums and shapes
    ("side long", order(side="long"), 400),
    ("type stop", order(type="stop"), 400),
    ("extra field", order(foo=1), 400),
    ("leverage as string", order(leverage="10"), 400),
    ("quantity as string", order(quantity="100"), 400),
    ("quantity as bool", order(quantity=True), 400),
]


@pytest.mark.parametrize(("name", "body", "status"), NEW_TRADE_CASES, ids=[c[0] for c in NEW_TRADE_CASES])
def test_new_trade_rules(sim, name, body, status):
    account = sim.control.create_account(balance=100_000_000)
    reply = Signed(sim, account).post("/futures/isolated/trade", body)
    assert reply.status == status, reply.body
    if status == 400:
        assert reply.body["code"] == "BAD_REQUEST"
        assert reply.body["message"]
        assert Signed(sim, account).balance() == 100_000_000


def cost(quantity: int, leverage: int, side: Side = "buy") -> int:
    price = Decimal(100_000)
    liq = initial_liquidation_price(side, quantity, price, Decimal(leverage))
    return margin_from_quantity(quantity, price, Decimal(leverage)) + sum(fee_reserves(quantity, price, liq))


@pytest.mark.parametrize(("shortfall", "status"), [(0, 200), (1, 400)])
def test_margin_plus_reserves_against_balance(sim, shortfall, status):
    needed = cost(100, 10)
    assert needed == 10_210
    account = sim.control.create_account(balance=needed - shortfall)
    reply = Signed(sim, account).trade(**BASE)
    assert reply.status == status
    if status == 400:
        assert reply.body["code"] == "INSUFFICIENT_FUNDS"
    else:
        assert Signed(sim, account).balance() == 0


def test_at_most_100_open_and_running_trades(sim):
    account = sim.control.create_account(balance=100_000_000)
    client = Signed(sim, account)
    for _ in range(100):
        client.ok_trade(type="limit", side="buy", quantity=1, leverage=10, price=90_000)
    reply = client.trade(type="limit", side="buy", quantity=1, leverage=10, price=90_000)
    assert reply.status == 400
    assert "100" in reply.body["message"]
    [first, *_] = client.get("/futures/isolated/trades/open").body
    assert client.post("/futures/isolated/trade/cancel", {"id": first["id"]}).status == 200
    assert client.trade(type="limit", side="buy", quantity=1, leverage=10, price=90_000).status == 200


def test_10_million_usd_per_account(sim):
    account = sim.control.create_account(balance=10**12)
    client = Signed(sim, account)
    for _ in range(19):
        client.ok_trade(type="limit", side="buy", quantity=500_000, leverage=100, price=90_000)
    client.ok_trade(type="limit", side="buy", quantity=499_999, leverage=100, price=90_000)
    reply = client.trade(type="limit", side="buy", quantity=2, leverage=100, price=90_000)
    assert reply.status == 400
    assert "10000000" in reply.body["message"]
    assert client.trade(type="limit", side="buy", quantity=1, leverage=100, price=90_000).status == 200


# -- updates of running trades -------------------------------------------------------------------------------------
@pytest.fixture
def long_trade(sim, sim_account):
    client = Signed(sim, sim_account)
    return client, client.ok_trade(**BASE)


UPDATE_CASES = [
    ("stoploss", 90909, 200),
    ("stoploss", Decimal("90908.5"), 400),
    ("stoploss", Decimal("99999.5"), 200),
    ("stoploss", 100_000, 400),
    ("takeprofit", 100_000, 400),
    ("takeprofit", Decimal("100000.5"), 200),
    ("takeprofit", -5, 400),
    ("takeprofit", "110000", 400),
]


@pytest.mark.parametrize(("kind", "value", "status"), UPDATE_CASES)
def test_update_stoploss_and_takeprofit_sides(long_trade, kind, value, status):
    client, trade = long_trade
    reply = client.put(f"/futures/isolated/trade/{kind}", {"id": trade["id"], "value": value})
    assert reply.status == status, reply.body
    if status == 200:
        assert reply.body[kind] == value


@pytest.mark.parametrize("kind", ["stoploss", "takeprofit"])
def test_same_as_previous_value_is_rejected(long_trade, kind):
    client, trade = long_trade
    value = 95_000 if kind == "stoploss" else 105_000
    assert client.put(f"/futures/isolated/trade/{kind}", {"id": trade["id"], "value": value}).status == 200
    reply = client.put(f"/futures/isolated/trade/{kind}", {"id": trade["id"], "value": value})
    assert reply.status == 400
    assert "same as the previous" in reply.body["message"]
    other = 96_000 if kind == "stoploss" else 106_000
    assert client.put(f"/futures/isolated/trade/{kind}", {"id": trade["id"], "value": other}).status == 200


def test_new_stoploss_must_stay_below_an_existing_takeprofit(sim, long_trade):
    client, trade = long_trade

    def misplace_tp(ex):
        ex.trades[trade["id"]].takeprofit = Decimal(99_000)

    sim.call(misplace_tp)
    reply = client.put("/futures/isolated/trade/stoploss", {"id": trade["id"], "value": 99_500})
    assert reply.status == 400
    assert "takeprofit" in reply.body["message"]
    assert client.put("/futures/isolated/trade/stoploss", {"id": trade["id"], "value": 98_500}).status == 200


def test_value_zero_removes_and_delete_removes(long_trade):
    client, trade = long_trade
    assert client.put("/futures/isolated/trade/stoploss", {"id": trade["id"], "value": 95_000}).status == 200
    assert client.put("/futures/isolated/trade/stoploss", {"id": trade["id"], "value": 0}).body["stoploss"] == 0
    assert client.put("/futures/isolated/trade/takeprofit", {"id": trade["id"], "value": 105_000}).status == 200
    reply = client.delete("/futures/isolated/trade/takeprofit", {"id": trade["id"]})
    assert reply.status == 200
    assert reply.body["takeprofit"] == 0
    assert client.delete("/futures/isolated/trade/takeprofit", {"id": trade["id"]}).status == 400


@pytest.mark.parametrize(
    ("amount", "status"),
    [(0, 400), (-1, 400), (1, 200), ("5", 400), (Decimal("1.5"), 400)],
)
def test_add_margin_amount(long_trade, amount, status):
    client, trade = long_trade
    assert client.post("/futures/isolated/trade/add-margin", {"id": trade["id"], "amount": amount}).status == status


def test_add_margin_cannot_push_leverage_below_1(long_trade):
    client, trade = long_trade
    # 100 USD at 100 000 is 100 000 sats at 1x: margin 10 000 + 90 000 is exactly 1x, one more sat is below.
    assert client.post("/futures/isolated/trade/add-margin", {"id": trade["id"], "amount": 90_001}).status == 400
    reply = client.post("/futures/isolated/trade/add-margin", {"id": trade["id"], "amount": 90_000})
    assert reply.status == 200
    assert reply.body["leverage"] == 1


def test_cash_in_cannot_push_leverage_above_100(long_trade):
    client, trade = long_trade
    # margin 10 000 at 100 000 for 100 USD: 100x is 1 000 sats, so 9 000 may come out, 9 001 may not.
    assert client.post("/futures/isolated/trade/cash-in", {"id": trade["id"], "amount": 9_001}).status == 400
    reply = client.post("/futures/isolated/trade/cash-in", {"id": trade["id"], "amount": 9_000})
    assert reply.status == 200
    assert reply.body["margin"] == 1_000
    assert reply.body["leverage"] == 100
