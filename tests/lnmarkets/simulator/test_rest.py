"""REST v3 behaviour beyond the worked examples: bad input, routes, lists and pagination, triggers, cash-in."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests

from lnmarkets.maths import pnl

from .helpers import Signed

BODY = {"type": "market", "side": "buy", "quantity": 100, "leverage": 10}


def test_public_endpoints(sim):
    assert requests.get(sim.rest_url + "/ping", timeout=5).text == "pong"
    time_reply = requests.get(sim.rest_url + "/time", timeout=5).json()
    assert time_reply["time"].endswith("Z")
    assert len(time_reply["time"]) == len("2026-11-26T12:00:00.000Z")
    ticker = requests.get(sim.rest_url + "/futures/ticker", timeout=5).json()
    assert set(ticker) >= {"time", "index", "lastPrice", "fundingRate", "fundingTime", "prices"}
    assert [set(p) for p in ticker["prices"]] == [{"minSize", "maxSize", "bidPrice", "askPrice"}] * 4
    assert all(p["bidPrice"] <= ticker["lastPrice"] <= p["askPrice"] for p in ticker["prices"])


def test_candles_are_paginated_and_newest_first(sim):
    sim.control.step(5)
    page = requests.get(sim.rest_url + "/futures/candles?range=1m&limit=1", timeout=5).json()
    assert set(page) == {"data", "nextCursor"}
    assert len(page["data"]) == 1
    assert set(page["data"][0]) == {"time", "open", "high", "low", "close", "volume"}
    assert page["data"][0]["low"] <= page["data"][0]["close"] <= page["data"][0]["high"]
    bad = requests.get(sim.rest_url + "/futures/candles?range=2m", timeout=5)
    assert bad.status_code == 400


@pytest.mark.parametrize(
    ("raw", "content"),
    [
        ("{not json", "malformed"),
        ("[]", "object"),
        ('{"type":"market","side":"buy","quantity":NaN,"leverage":10}', "NaN"),
        ('{"type":"market","side":"buy","quantity":Infinity,"leverage":10}', "Infinity"),
        ('{"type":"market","side":"buy","quantity":1e999,"leverage":10}', "huge float"),
        ('{"type":"market","side":"buy","quantity":' + "9" * 5000 + ',"leverage":10}', "huge int"),
        ('{"type":"market","side":"buy","quantity":100,"leverage":10,"x":1}', "extra"),
        ('{"type":"market","side":"buy","quantity":"100","leverage":10}', "string number"),
        ('{"type":"market","side":"buy","quantity":100,"leverage":null}', "null"),
        ('"just a string"', "string"),
        ("", "empty"),
        ("[" * 20_000 + "]" * 20_000, "deeply nested"),
        ('{"clientId":"' + "x" * 300_000 + '"}', "too large"),
        (
            '{"type":"market","side":"buy","quantity":100,"leverage":10,"clientId":' + "[" * 3000 + "]" * 3000 + "}",
            "deep",
        ),
    ],
)
def test_bad_bodies_are_400_never_500(sim, sim_account, raw, content):
    reply = Signed(sim, sim_account).request("post", "/futures/isolated/trade", raw_body=raw)
    assert reply.status == 400, (content, reply.body)
    assert reply.body["code"] == "BAD_REQUEST"


@pytest.mark.parametrize(
    ("method", "path", "body", "params"),
    [
        ("post", "/futures/isolated/trade/close", {"id": 5}, None),
        ("post", "/futures/isolated/trade/close", {}, None),
        ("post", "/futures/isolated/trade/add-margin", {"id": "x", "amount": Decimal("1e30")}, None),
        ("put", "/futures/isolated/trade/stoploss", {"id": "x", "value": True}, None),
        ("put", "/futures/isolated/trade/stoploss", {"id": "x", "value": 95000, "mode": "weird"}, None),
        ("get", "/futures/isolated/trades/closed", None, {"limit": 0}),
        ("get", "/futures/isolated/trades/closed", None, {"limit": "abc"}),
        ("get", "/futures/isolated/trades/closed", None, {"from": "yesterday"}),
        ("get", "/futures/isolated/trades/closed", None, {"cursor": "!!!"}),
        ("get", "/futures/isolated/trades/running", None, {"foo": "bar"}),
        ("delete", "/futures/isolated/trade/stoploss", None, None),
    ],
)
def test_bad_input_on_every_kind_of_endpoint_is_400(sim, sim_account, method, path, body, params):
    reply = Signed(sim, sim_account).request(method, path, body=body, params=params)
    assert reply.status == 400, reply.body
    assert reply.body["code"] == "BAD_REQUEST"


def test_unknown_routes_are_404_json(sim, sim_account):
    for url in ("/v3/nope", "/v2/futures", "/nothing/here"):
        response = requests.get(sim.base_url + url, timeout=5)
        assert response.status_code == 404
        assert response.json()["code"] == "NOT_FOUND"
    assert Signed(sim, sim_account).get("/futures/isolated/trade/nope").status == 404
    assert Signed(sim, sim_account).get("/futures/isolated/trade/close").status == 405


def test_trade_of_another_account_is_not_found(sim, sim_account):
    mine = Signed(sim, sim_account).ok_trade(**BODY)
    other = Signed(sim, sim.control.create_account())
    reply = other.post("/futures/isolated/trade/close", {"id": mine["id"]})
    assert (reply.status, reply.body["code"]) == (404, "NOT_FOUND")


def test_limit_order_lifecycle_open_filled_canceled(sim, sim_account):
    client = Signed(sim, sim_account)
    buy = client.ok_trade(type="limit", side="buy", quantity=10, leverage=10, price=99_000)
    keep = client.ok_trade(type="limit", side="buy", quantity=10, leverage=10, price=90_000)
    assert [t["id"] for t in client.get("/futures/isolated/trades/open").body] == [buy["id"], keep["id"]]
    sim.control.set_price(99_500)
    assert len(client.running()) == 0
    sim.control.set_price(98_000)
    [filled] = client.running()
    assert filled["id"] == buy["id"]
    assert filled["entryPrice"] == 99_000
    assert filled["filledAt"] is not None
    assert filled["openingFee"] == 10
    before = client.balance()
    canceled = client.post("/futures/isolated/trades/cancel-all").body
    assert [t["id"] for t in canceled] == [keep["id"]]
    assert canceled[0]["canceled"] is True
    assert canceled[0]["filledAt"] is None
    assert canceled[0]["closedAt"] is not None
    assert client.balance() == before + keep["margin"] + keep["maintenanceMargin"]
    listed = client.get("/futures/isolated/trades/canceled").body
    assert [t["id"] for t in listed["data"]] == [keep["id"]]
    assert client.post("/futures/isolated/trade/cancel", {"id": buy["id"]}).status == 400


def test_closed_list_pagination_with_cursor(sim, sim_account):
    client = Signed(sim, sim_account)
    ids = []
    for _ in range(5):
        trade = client.ok_trade(**BODY)
        client.post("/futures/isolated/trade/close", {"id": trade["id"]})
        ids.append(trade["id"])
    seen = []
    cursor = None
    for _ in range(5):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/futures/isolated/trades/closed", params).body
        seen += [t["id"] for t in page["data"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    future = client.get("/futures/isolated/trades/closed", {"from": "2999-01-01T00:00:00.000Z"}).body
    assert future == {"data": [], "nextCursor": None}


@pytest.mark.parametrize(
    ("side", "tp", "sl", "price", "event", "exit_price"),
    [
        ("buy", 101_000, 99_000, 101_000, "takeprofit", 101_000),
        ("buy", 101_000, 99_000, 99_000, "stoploss", 99_000),
        ("sell", 99_000, 101_000, 99_000, "takeprofit", 99_000),
        ("sell", 99_000, 101_000, 101_500, "stoploss", 101_000),
        ("buy", None, None, 90_000, "liquidation", 90_909),
        ("sell", None, None, 112_000, "liquidation", 111_111),
    ],
)
def test_triggers_close_at_their_level(sim, sim_account, side, tp, sl, price, event, exit_price):
    client = Signed(sim, sim_account)
    body = {**BODY, "side": side}
    if tp:
        body.update(takeprofit=tp, stoploss=sl)
    trade = client.ok_trade(**body)
    sim.control.set_price(price)
    assert client.running() == []
    [closed] = client.get("/futures/isolated/trades/closed").body["data"]
    assert closed["id"] == trade["id"]
    assert closed["exitPrice"] == exit_price
    if event == "liquidation":
        assert closed["pl"] == -trade["margin"]
    else:
        assert closed["pl"] == pnl(side, 100, Decimal(100_000), Decimal(exit_price))
    counters = sim.control.state()["counters"]
    assert counters[{"takeprofit": "takeprofits", "stoploss": "stoplosses", "liquidation": "liquidations"}[event]] == 1


def test_add_margin_moves_liquidation_away(sim, sim_account):
    client = Signed(sim, sim_account)
    trade = client.ok_trade(**BODY)
    before = client.balance()
    reply = client.post("/futures/isolated/trade/add-margin", {"id": trade["id"], "amount": 10_000})
    assert reply.status == 200
    assert reply.body["margin"] == 20_000
    assert reply.body["leverage"] == 5
    assert reply.body["liquidation"] < trade["liquidation"]
    assert client.balance() == before - 10_000
    assert client.post("/futures/isolated/trade/add-margin", {"id": trade["id"], "amount": 10**9}).status == 400


def test_cash_in_from_profit_moves_entry_then_from_margin(sim, sim_account):
    client = Signed(sim, sim_account)
    trade = client.ok_trade(**BODY)
    sim.control.set_price(105_000)  # pl 4762
    before = client.balance()
    reply = client.post("/futures/isolated/trade/cash-in", {"id": trade["id"], "amount": 2_000})
    assert reply.status == 200
    after = reply.body
    assert after["margin"] == 10_000
    assert 100_000 < after["price"] < 105_000
    assert Decimal(str(after["price"])) % Decimal("0.5") == 0
    assert after["sumCashInPl"] == 2_000
    assert client.balance() == before + 2_000
    assert 2_700 <= after["pl"] <= 2_762
    reply = client.post("/futures/isolated/trade/cash-in", {"id": trade["id"], "amount": after["pl"] + 1_000})
    assert reply.status == 200
    assert reply.body["price"] == 105_000
    assert reply.body["margin"] == 9_000
    assert reply.body["sumCashInMargin"] == 1_000
    assert reply.body["pl"] == 0


def test_cash_in_at_a_loss_comes_from_margin_and_drops_a_stoploss_past_liquidation(sim, sim_account):
    client = Signed(sim, sim_account)
    trade = client.ok_trade(**BODY, stoploss=91_000)
    sim.control.set_price(99_000)
    reply = client.post("/futures/isolated/trade/cash-in", {"id": trade["id"], "amount": 5_000})
    assert reply.status == 200
    assert reply.body["margin"] == 5_000
    assert reply.body["price"] == 100_000
    assert reply.body["liquidation"] > 91_000
    assert reply.body["stoploss"] == 0


def test_margin_instead_of_quantity(sim, sim_account):
    trade = Signed(sim, sim_account).ok_trade(type="market", side="sell", margin=10_000, leverage=10)
    assert trade["quantity"] == 100
    assert trade["margin"] == 10_000
