"""The /_sim control API: guard, accounts, prices, counters, rate limits, and every fault kind (one test each)."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import pytest
import requests
import websockets

from lnmarkets.simulator import ControlError, SimulatorConfig, start_in_thread

from .helpers import Signed

TRADE = "/v3/futures/isolated/trade"
BODY = {"type": "market", "side": "buy", "quantity": 10, "leverage": 10}


def test_control_needs_the_bearer_token(sim):
    assert requests.get(sim.base_url + "/_sim/state", timeout=5).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert requests.get(sim.base_url + "/_sim/state", headers=wrong, timeout=5).status_code == 401
    assert sim.control.state()["frozen"] is True


def test_control_is_disabled_without_a_token():
    with start_in_thread(SimulatorConfig(port=0, control_token=None, auto_tick=False)) as other:
        response = requests.get(other.base_url + "/_sim/state", headers={"Authorization": "Bearer x"}, timeout=5)
        assert response.status_code == 404
        assert requests.get(other.rest_url + "/ping", timeout=5).text == "pong"


def test_unknown_control_route_and_bad_body(sim):
    with pytest.raises(ControlError) as caught:
        sim.control._call("POST", "/nope", {})
    assert caught.value.status == 404
    with pytest.raises(ControlError) as caught:
        sim.control._call("POST", "/price", {"price": "abc"})
    assert caught.value.status == 400
    with pytest.raises(ControlError) as caught:
        sim.control.set_price("100000.3")
    assert caught.value.status == 400


def test_accounts_keys_and_balance(sim):
    account = sim.control.create_account(balance=5_000, username="carol")
    assert account.username == "carol"
    assert account.balance == 5_000
    assert account.scopes == ("account:read", "futures:isolated:read", "futures:isolated:write")
    again = sim.control.create_account(key=account.key, secret=account.secret, passphrase=account.passphrase)
    assert again.id == account.id
    with pytest.raises(ControlError):
        sim.control.create_account(key=account.key, secret="other", passphrase=account.passphrase)
    read_only = sim.control.add_key(account.id, ["account:read"])
    assert read_only.id == account.id
    assert read_only.key != account.key
    assert Signed(sim, read_only).trade(**BODY).status == 403
    sim.control.set_balance(account.id, 42)
    assert Signed(sim, read_only).balance() == 42
    known = sim.control.create_account(key="fixed-key", secret="fixed-secret", passphrase="fixed-pass")
    assert (known.key, known.secret, known.passphrase) == ("fixed-key", "fixed-secret", "fixed-pass")
    assert Signed(sim, known).balance() == 1_000_000


def test_set_price_step_freeze_and_state(sim, sim_account):
    ticker = sim.control.set_price(Decimal("95000.5"), index=95010)
    assert ticker["lastPrice"] == 95000.5
    assert ticker["index"] == 95010
    assert ticker["prices"][0]["askPrice"] == 95000.5
    moved = sim.control.step(20)
    assert moved["lastPrice"] != 95000.5
    assert Decimal(str(moved["lastPrice"])) % Decimal("0.5") == 0
    assert sim.control.freeze(False) == {"frozen": False}
    assert sim.control.freeze(True) == {"frozen": True}
    Signed(sim, sim_account).ok_trade(**BODY)
    state = sim.control.state()
    [account] = state["accounts"]
    assert account["id"] == sim_account.id
    assert len(account["trades"]) == 1
    assert account["trades"][0]["running"] is True
    assert state["counters"]["trades"] == 1
    assert state["faults"] == []


def test_auto_tick_moves_the_price_when_not_frozen():
    with start_in_thread(SimulatorConfig(port=0, seed=3, control_token="t", tick_interval=0.01)) as other:
        first = other.control.state()["counters"]["ticks"]
        time.sleep(0.3)
        assert other.control.state()["counters"]["ticks"] > first + 5
        other.control.freeze(True)
        frozen = other.control.state()["counters"]["ticks"]
        time.sleep(0.1)
        assert other.control.state()["counters"]["ticks"] == frozen


def test_reset_drops_accounts_and_keeps_price(sim, sim_account):
    sim.control.set_price(90_000)
    sim.control.reset()
    assert sim.control.state()["accounts"] == []
    assert sim.control.state()["ticker"]["lastPrice"] == 90_000
    assert Signed(sim, sim_account).get("/account").status == 401


def test_requests_for_client_id_counts_every_received_request(sim, sim_account):
    client = Signed(sim, sim_account)
    assert client.trade(**BODY, clientId="c-1").status == 200
    assert client.trade(**{**BODY, "clientId": "c-1", "leverage": 500}).status == 400
    assert client.post("/futures/isolated/trade", {**BODY, "clientId": "c-1"}, passphrase="bad").status == 401
    sim.control.inject_fault("status", method="POST", path=TRADE, status=503)
    assert client.trade(**BODY, clientId="c-1").status == 503
    assert sim.control.requests_for_client_id("c-1") == 4
    assert sim.control.requests_for_client_id("other") == 0


def test_request_log_has_times_and_statuses(sim, sim_account):
    client = Signed(sim, sim_account)
    start = time.time()
    client.get("/account")
    client.get("/account", passphrase="bad")
    times = sim.control.request_log(sim_account.key)
    assert len(times) == 2
    assert start - 1 <= times[0] <= times[1] <= time.time() + 1
    assert sim.control.request_log_full(sim_account.key)["statuses"] == [200, 401]


def test_rate_limits_auth_5_per_second_per_key(sim, sim_account):
    sim.control.set_rate_limits(True, auth_rps=5, public_rps=1)
    client = Signed(sim, sim_account)
    statuses = [client.get("/account") for _ in range(7)]
    assert [r.status for r in statuses[:5]] == [200] * 5
    limited = statuses[5]
    assert limited.status == 429
    assert limited.body["code"] == "TOO_MANY_REQUESTS"
    assert int(limited.headers["Retry-After"]) >= 1
    other = sim.control.create_account()
    assert Signed(sim, other).get("/account").status == 200  # per key
    assert sim.control.request_log_full(sim_account.key)["statuses"][5:] == [429, 429]


def test_rate_limits_public_1_per_second_per_ip_and_switchable(sim):
    sim.control.set_rate_limits(True)
    first = requests.get(sim.rest_url + "/time", timeout=5)
    second = requests.get(sim.rest_url + "/futures/ticker", timeout=5)
    assert first.status_code == 200
    assert second.status_code == 429
    assert second.headers["Retry-After"] == "1"
    sim.control.set_rate_limits(False)
    assert all(requests.get(sim.rest_url + "/time", timeout=5).status_code == 200 for _ in range(5))


def test_settle_funding_now(sim, sim_account):
    client = Signed(sim, sim_account)
    client.ok_trade(type="market", side="buy", quantity=10_000, leverage=100)
    settlement = sim.control.settle_funding("-0.0002")
    assert settlement["fundingRate"] == -0.0002
    assert settlement["fixingPrice"] == 100_000
    [trade] = client.running()
    assert trade["sumFundingFees"] == -2000
    public = requests.get(sim.rest_url + "/futures/funding-settlements", timeout=5).json()
    assert public["data"][0]["id"] == settlement["id"]


# -- faults ----------------------------------------------------------------------------------------------------
def test_fault_delay_processes_nothing_when_the_client_times_out(sim, sim_account):
    client = Signed(sim, sim_account)
    sim.control.inject_fault("delay", method="POST", path=TRADE, seconds=0.6)
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.post("/futures/isolated/trade", {**BODY, "clientId": "slow"}, timeout=0.3)
    time.sleep(0.8)
    assert sim.control.state()["counters"]["trades"] == 0
    assert sim.control.requests_for_client_id("slow") == 1
    assert client.trade(**BODY).status == 200  # count=1: used up


def test_fault_delay_then_answers_normally(sim, sim_account):
    sim.control.inject_fault("delay", path="/v3/account", seconds=0.3)
    start = time.monotonic()
    assert Signed(sim, sim_account).get("/account").status == 200
    assert time.monotonic() - start >= 0.3


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_fault_status_answers_without_processing(sim, sim_account, status):
    sim.control.inject_fault("status", method="POST", path=TRADE, status=status, count=2)
    client = Signed(sim, sim_account)
    for _ in range(2):
        reply = client.trade(**BODY)
        assert reply.status == status
        assert set(reply.body) == {"code", "message"}
    assert sim.control.state()["counters"]["trades"] == 0
    assert client.trade(**BODY).status == 200


def test_fault_status_429_sets_retry_after(sim, sim_account):
    sim.control.inject_fault("status", status=429, retry_after=7)
    reply = Signed(sim, sim_account).get("/account")
    assert reply.status == 429
    assert reply.body["code"] == "TOO_MANY_REQUESTS"
    assert reply.headers["Retry-After"] == "7"


def test_fault_only_matches_its_method_and_path(sim, sim_account):
    sim.control.inject_fault("status", method="GET", path="/v3/futures/isolated/trades/running", status=500, count=None)
    client = Signed(sim, sim_account)
    assert client.get("/account").status == 200
    assert client.get("/futures/isolated/trades/running").status == 500
    assert client.get("/futures/isolated/trades/running").status == 500
    sim.control.clear_faults()
    assert client.get("/futures/isolated/trades/running").status == 200


def test_fault_accept_then_delay_creates_the_trade(sim, sim_account):
    sim.control.inject_fault("accept_then_delay", method="POST", path=TRADE, seconds=0.6)
    client = Signed(sim, sim_account)
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.post("/futures/isolated/trade", BODY, timeout=0.3)
    assert sim.control.state()["counters"]["trades"] == 1
    assert len(client.running()) == 1


def test_fault_accept_then_status_creates_the_trade_and_answers_an_error(sim, sim_account):
    sim.control.inject_fault("accept_then_status", method="POST", path=TRADE, status=502)
    client = Signed(sim, sim_account)
    reply = client.trade(**BODY)
    assert reply.status == 502
    assert reply.body["code"] == "BAD_GATEWAY"
    assert len(client.running()) == 1


async def _recv_json(ws, wait):
    return json.loads(await asyncio.wait_for(ws.recv(), wait))


async def test_fault_stream_drop_closes_sockets_and_refuses_for_a_while(sim):
    loop = asyncio.get_running_loop()
    async with websockets.connect(sim.stream_url) as ws:
        await loop.run_in_executor(None, lambda: sim.control.inject_fault("stream_drop", seconds=0.5))
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 2)
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(sim.stream_url):
            pass
    await asyncio.sleep(0.6)
    async with websockets.connect(sim.stream_url) as ws:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        assert (await _recv_json(ws, 2))["result"] == "pong"


async def test_fault_stream_silence_sends_nothing_but_keeps_the_socket(sim):
    loop = asyncio.get_running_loop()
    async with websockets.connect(sim.stream_url) as ws:
        await ws.send(
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": 1,
                    "method": "subscribe",
                    "params": {"topics": ["futures/inverse/btc_usd/ticker"]},
                }
            )
        )
        assert "result" in await _recv_json(ws, 2)
        await loop.run_in_executor(None, lambda: sim.control.inject_fault("stream_silence", seconds=0.5))
        await loop.run_in_executor(None, sim.control.set_price, 101_000)
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "ping"}))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.3)
        await asyncio.sleep(0.3)
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 3, "method": "ping"}))
        assert (await _recv_json(ws, 2))["id"] == 3


def test_fault_stale_ticker_freezes_the_ticker_time(sim):
    before = sim.control.set_price(100_000)["time"]
    sim.control.inject_fault("stale_ticker", seconds=0.5)
    time.sleep(0.05)
    during = sim.control.set_price(100_500)
    assert during["time"] == before
    assert during["lastPrice"] == 100_500
    assert requests.get(sim.rest_url + "/futures/ticker", timeout=5).json()["time"] == before
    time.sleep(0.5)
    assert sim.control.set_price(101_000)["time"] > before


def test_clear_faults_lists_and_removes(sim):
    sim.control.inject_fault("status", status=500, count=None)
    sim.control.inject_fault("stream_silence", seconds=100)
    assert [f["kind"] for f in sim.control.state()["faults"]] == ["status", "stream_silence"]
    assert sim.control.clear_faults() == {"cleared": 2}
    assert sim.control.state()["faults"] == []
    assert requests.get(sim.rest_url + "/ping", timeout=5).status_code == 200


@pytest.mark.parametrize(
    "body",
    [{"kind": "explode"}, {"kind": "status", "status": 404}, {"kind": "delay"}, {"kind": "delay", "seconds": -1}],
)
def test_bad_fault_requests_are_400(sim, body):
    with pytest.raises(ControlError) as caught:
        sim.control._call("POST", "/faults", body)
    assert caught.value.status == 400
