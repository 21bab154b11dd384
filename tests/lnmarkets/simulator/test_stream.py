"""Stream v1: JSON-RPC methods, ticker pushes, authenticated private trade events (own only), the 10 msg/s cap."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

import pytest
import websockets

from lnmarkets.signing import stream_signature

from .helpers import Signed

TICKER = "futures/inverse/btc_usd/ticker"
TRADES = "futures/inverse/btc_usd/isolated/trades"


class Rpc:
    def __init__(self, ws):
        self.ws = ws
        self.pushes: list[dict[str, Any]] = []
        self.next_id = 0

    async def call(self, method, params=None):
        self.next_id += 1
        message = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        await self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(await asyncio.wait_for(self.ws.recv(), 3))
            if reply.get("id") == self.next_id:
                return reply
            self.pushes.append(reply)

    async def authenticate(self, account, **override):
        ts = int(time.time() * 1000)
        nonce = secrets.token_hex(8)
        params = {
            "key": account.key,
            "passphrase": account.passphrase,
            "timestamp": ts,
            "nonce": nonce,
            "signature": stream_signature(account.secret, ts, nonce),
        }
        params.update(override)
        return await self.call("authenticate", params)

    async def push(self, wait=3.0):
        if self.pushes:
            return self.pushes.pop(0)
        return json.loads(await asyncio.wait_for(self.ws.recv(), wait))

    async def drain(self, seconds=0.3):
        out = list(self.pushes)
        self.pushes.clear()
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                out.append(json.loads(await asyncio.wait_for(self.ws.recv(), left)))
            except TimeoutError:
                break
        return out


async def in_thread(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def test_basic_methods(sim):
    async with websockets.connect(sim.stream_url) as ws:
        rpc = Rpc(ws)
        assert (await rpc.call("hello", {"clientName": "t", "clientVersion": "1"}))["result"] == {"version": "1.0.0"}
        assert (await rpc.call("ping"))["result"] == "pong"
        reply = await rpc.call("time")
        assert abs(reply["result"]["time"] - time.time() * 1000) < 5_000
        assert reply["rateLimit"]["limit"] == 10
        assert (await rpc.call("whoami"))["result"] == {"apiKey": None, "userId": None, "permissions": []}
        assert (await rpc.call("nope"))["error"]["code"] == -32601
        assert (await rpc.call("subscribe", {"topics": []}))["error"]["code"] == -32602
        assert (await rpc.call("subscribe", {"topics": ["no/such/topic"]}))["error"]["code"] == -32602


async def test_ticker_pushes_after_subscribe_and_none_after_unsubscribe(sim):
    async with websockets.connect(sim.stream_url) as ws:
        rpc = Rpc(ws)
        reply = await rpc.call("subscribe", {"topics": [TICKER, "futures/inverse/btc_usd/lastPrice"]})
        assert reply["result"] == {"subscribed": [TICKER, "futures/inverse/btc_usd/lastPrice"]}
        await in_thread(sim.control.set_price, "101000.5")
        pushes = await rpc.drain(0.5)
        by_topic = {p["params"]["topic"]: p["params"]["data"] for p in pushes}
        assert by_topic[TICKER]["lastPrice"] == 101000.5
        assert isinstance(by_topic[TICKER]["time"], int)
        assert set(by_topic[TICKER]["funding"]) == {"rate", "time"}
        assert by_topic["futures/inverse/btc_usd/lastPrice"]["lastPrice"] == 101000.5
        assert (await rpc.call("unsubscribeAll"))["result"]["unsubscribed"]
        await in_thread(sim.control.set_price, 102000)
        assert await rpc.drain(0.3) == []


async def test_private_topic_needs_authentication(sim, sim_account):
    async with websockets.connect(sim.stream_url) as ws:
        rpc = Rpc(ws)
        reply = await rpc.call("subscribe", {"topics": [TRADES]})
        assert reply["error"]["code"] == -32001
        bad = await rpc.authenticate(sim_account, signature="AAAA")
        assert bad["error"]["data"]["code"] == "INVALID_SIGNATURE"
        stale = await rpc.authenticate(sim_account, timestamp=int(time.time() * 1000) - 60_000)
        assert "error" in stale
        ok = await rpc.authenticate(sim_account)
        assert ok["result"] == {"authenticated": True, "permissions": list(sim_account.scopes)}
        who = (await rpc.call("whoami"))["result"]
        assert who == {"apiKey": sim_account.key, "userId": sim_account.id, "permissions": list(sim_account.scopes)}


async def test_own_trade_events_only(sim):
    alice = await in_thread(sim.control.create_account)
    bob = await in_thread(sim.control.create_account)
    async with websockets.connect(sim.stream_url) as ws_a, websockets.connect(sim.stream_url) as ws_b:
        a, b = Rpc(ws_a), Rpc(ws_b)
        for rpc, account in ((a, alice), (b, bob)):
            assert (await rpc.authenticate(account))["result"]["authenticated"] is True
            assert "result" in await rpc.call("subscribe", {"topics": [TRADES]})
        alice_client = Signed(sim, alice)
        market = await in_thread(
            lambda: alice_client.ok_trade(type="market", side="buy", quantity=100, leverage=10, clientId="a1")
        )
        limit = await in_thread(
            lambda: alice_client.ok_trade(type="limit", side="sell", quantity=10, leverage=10, price=101_000)
        )
        limit2 = await in_thread(
            lambda: alice_client.ok_trade(type="limit", side="buy", quantity=10, leverage=10, price=90_000)
        )
        await in_thread(
            lambda: alice_client.put("/futures/isolated/trade/takeprofit", {"id": market["id"], "value": 101_500})
        )
        await in_thread(sim.control.set_price, 102_000)  # fills the sell limit, then the long's take-profit
        await in_thread(lambda: alice_client.post("/futures/isolated/trade/cancel", {"id": limit2["id"]}))
        await in_thread(sim.control.settle_funding, "0.0001")
        await in_thread(lambda: alice_client.post("/futures/isolated/trade/close", {"id": limit["id"]}))
        events = [(p["params"]["data"]["event"], p["params"]["data"]["trade"]["id"]) for p in await a.drain(0.5)]
        assert events == [
            ("filled", market["id"]),
            ("open", limit["id"]),
            ("open", limit2["id"]),
            ("filled", limit["id"]),
            ("takeprofit", market["id"]),
            ("canceled", limit2["id"]),
            ("funding", limit["id"]),
            ("closed", limit["id"]),
        ]
        assert await b.drain(0.2) == []


async def test_stoploss_and_liquidation_events(sim, sim_account):
    client = Signed(sim, sim_account)
    async with websockets.connect(sim.stream_url) as ws:
        rpc = Rpc(ws)
        await rpc.authenticate(sim_account)
        await rpc.call("subscribe", {"topics": [TRADES]})
        sl = await in_thread(
            lambda: client.ok_trade(type="market", side="buy", quantity=100, leverage=10, stoploss=95_000)
        )
        liq = await in_thread(lambda: client.ok_trade(type="market", side="buy", quantity=100, leverage=50))
        await in_thread(sim.control.set_price, 90_000)
        pushes = [p["params"]["data"] for p in await rpc.drain(0.5)]
        closing = {p["trade"]["id"]: p for p in pushes if p["event"] in ("stoploss", "liquidation")}
        assert closing[sl["id"]]["event"] == "stoploss"
        assert closing[sl["id"]]["trade"]["exitPrice"] == 95_000
        assert "pl" in closing[sl["id"]]["trade"]
        assert closing[liq["id"]]["event"] == "liquidation"
        assert "pl" not in closing[liq["id"]]["trade"]
        assert closing[liq["id"]]["trade"]["exitPrice"] == liq["liquidation"]


async def test_inbound_cap_of_10_messages_per_second(sim):
    async with websockets.connect(sim.stream_url) as ws:
        for i in range(15):
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": i, "method": "ping"}))
        replies = [json.loads(await asyncio.wait_for(ws.recv(), 3)) for _ in range(15)]
        ok = [r for r in replies if "result" in r]
        refused = [r for r in replies if "error" in r]
        assert len(ok) == 10
        assert len(refused) == 5
        assert refused[0]["error"]["data"]["code"] == "TOO_MANY_REQUESTS"
        assert ok[-1]["rateLimit"] == {"remaining": 0, "limit": 10}


@pytest.mark.parametrize("frame", ["not json", "[]", '{"jsonrpc":"2.0","method":"ping"}', '{"id":1,"method":"ping"}'])
async def test_malformed_frames_get_errors_not_disconnects(sim, frame):
    async with websockets.connect(sim.stream_url) as ws:
        await ws.send(frame)
        reply = json.loads(await asyncio.wait_for(ws.recv(), 3))
        assert reply["error"]["code"] in (-32700, -32600)
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 9, "method": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 3))["result"] == "pong"


async def test_funding_topic_pushes_each_settlement(sim):
    async with websockets.connect(sim.stream_url) as ws:
        rpc = Rpc(ws)
        await rpc.call("subscribe", {"topics": ["futures/inverse/btc_usd/funding"]})
        await in_thread(sim.control.settle_funding, "0.0003")
        [push] = await rpc.drain(0.3)
        assert push["params"]["topic"] == "futures/inverse/btc_usd/funding"
        current = push["params"]["data"]["current"]
        assert current["rate"] == 0.0003
        assert abs(current["time"] - time.time() * 1000) < 5_000
