"""The Exchange object and its options directly: funding hours with an injected clock, trigger modes, bucket fills,
the CSV replay, the state file and the command line."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import requests

from lnmarkets.simulator import SimulatorConfig, start_in_thread
from lnmarkets.simulator.config import BucketSpec
from lnmarkets.simulator.exchange import Exchange
from lnmarkets.simulator.market import next_funding_time
from lnmarkets.simulator.persist import load_state, save_state
from lnmarkets.simulator.prices import CandleReplay, load_candles
from lnmarkets.simulator.validation import parse_order


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def market(side="buy", quantity=100, leverage=10, **extra):
    return parse_order({"type": "market", "side": side, "quantity": quantity, "leverage": leverage, **extra})


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2026-11-26T07:59:59", "2026-11-26T08:00:00"),
        ("2026-11-26T08:00:00", "2026-11-26T16:00:00"),
        ("2026-11-26T16:30:00", "2026-11-27T00:00:00"),
        ("2026-11-26T00:00:00", "2026-11-26T08:00:00"),
    ],
)
def test_next_funding_time(now, expected):
    moment = datetime.fromisoformat(now).replace(tzinfo=UTC)
    assert next_funding_time(moment, (0, 8, 16)) == datetime.fromisoformat(expected).replace(tzinfo=UTC)


def test_funding_settles_on_the_first_tick_at_or_after_the_hour():
    clock = Clock(datetime(2026, 11, 26, 7, 59, 0, tzinfo=UTC))
    exchange = Exchange(SimulatorConfig(seed=1), clock)
    account, _ = exchange.create_account()
    trade = exchange.open_trade(account.id, market())
    exchange.tick(Decimal(100_000))
    assert exchange.settlements == []
    clock.now += timedelta(seconds=60)
    exchange.tick(Decimal(100_000))
    assert len(exchange.settlements) == 1
    assert trade.sum_funding_fees == 10
    assert trade.margin == 9_990
    assert exchange.ticker()["fundingTime"] == "2026-11-26T16:00:00.000Z"
    clock.now += timedelta(hours=1)
    exchange.tick(Decimal(100_000))
    assert len(exchange.settlements) == 1
    assert exchange.conservation_gap(account.id) == 0


def test_a_limit_order_pays_no_funding():
    exchange = Exchange(SimulatorConfig(seed=1))
    account, _ = exchange.create_account()
    order = exchange.open_trade(
        account.id, parse_order({"type": "limit", "side": "buy", "quantity": 100, "leverage": 10, "price": 90_000})
    )
    exchange.settle_funding(Decimal("0.01"))
    assert order.sum_funding_fees == 0
    assert exchange.funding_fees[account.id] == []


WIDE = (BucketSpec(1, 1_000, 2), BucketSpec(1_001, 500_000, 10))


def test_market_orders_fill_at_the_bucket_quote_and_are_marked_to_the_other_side():
    exchange = Exchange(SimulatorConfig(seed=1, buckets=WIDE))
    account, _ = exchange.create_account(balance=10**9)
    small_buy = exchange.open_trade(account.id, market(quantity=1_000))
    big_buy = exchange.open_trade(account.id, market(quantity=1_001))
    big_sell = exchange.open_trade(account.id, market(side="sell", quantity=5_000))
    assert small_buy.entry_price == Decimal("100001")
    assert big_buy.entry_price == Decimal("100005")
    assert big_sell.entry_price == Decimal("99995")
    assert exchange.mark(big_buy) == Decimal("99995")
    assert exchange.unrealised(big_sell) < 0


@pytest.mark.parametrize(("mode", "triggers"), [("last", True), ("quote", False), ("worse", False)])
def test_trigger_mode_decides_which_price_fires_a_take_profit(mode, triggers):
    exchange = Exchange(SimulatorConfig(seed=1, buckets=WIDE, trigger_mode=mode))
    account, _ = exchange.create_account()
    trade = exchange.open_trade(account.id, market(quantity=100, takeprofit=101_000))
    exchange.tick(Decimal(101_000))  # last reaches the TP, the long's bid (100 999) does not
    assert (trade.state == "closed") is triggers


@pytest.mark.parametrize(("mode", "exit_price"), [("level", Decimal(99_000)), ("market", Decimal(95_000))])
def test_exit_mode_level_or_market_after_a_gap(mode, exit_price):
    exchange = Exchange(SimulatorConfig(seed=1, exit_mode=mode))
    account, _ = exchange.create_account()
    trade = exchange.open_trade(account.id, market(stoploss=99_000))
    exchange.tick(Decimal(95_000))
    assert trade.closed_by == "stoploss"
    assert trade.exit_price == exit_price


def test_candle_replay(tmp_path):
    path = tmp_path / "candles.csv"
    path.write_text(
        "time,open,high,low,close,volume\n2025-01-01T00:00:00Z,100,110,90,105,3\n2025-01-01T00:01:00Z,105,106,95.3,96,1\n"
    )
    replay = CandleReplay(load_candles(path))
    prices = [replay.next_price(Decimal(1)) for _ in range(8)]
    prices.append(replay.next_price(prices[-1]))  # exhausted: holds the last price
    assert prices == [Decimal(p) for p in ("100", "90", "110", "105", "105", "106", "95.5", "96", "96")]
    exchange = Exchange(SimulatorConfig(seed=1, price=Decimal(100), candles_file=str(path)))
    exchange.tick()
    assert exchange.last_price == Decimal(100)


def test_state_file_round_trip(tmp_path):
    path = str(tmp_path / "state.json")
    exchange = Exchange(SimulatorConfig(seed=1))
    account, key = exchange.create_account(balance=500_000)
    trade = exchange.open_trade(account.id, market(stoploss=95_000, clientId="persist"))
    exchange.settle_funding()
    save_state(exchange, path)
    restored = Exchange(SimulatorConfig(seed=2))
    assert load_state(restored, path) is True
    assert restored.keys[key.key].secret == key.secret
    assert restored.trade_json(restored.trades[trade.id]) == exchange.trade_json(trade)
    assert restored.accounts[account.id].balance == account.balance
    assert restored.conservation_gap(account.id) == 0
    assert restored.settlements[0]["fixingPrice"] == Decimal(100_000)
    assert load_state(restored, str(tmp_path / "missing.json")) is False


def test_state_file_survives_a_restart(tmp_path):
    path = str(tmp_path / "state.json")
    config = SimulatorConfig(port=0, control_token="t", auto_tick=False, state_file=path)
    with start_in_thread(config) as first:
        account = first.control.create_account(key="k1", secret="s1", passphrase="p1")
    with start_in_thread(config) as second:
        again = second.control.create_account(key="k1", secret="s1", passphrase="p1")
        assert again.id == account.id


def test_command_line_server_starts_and_answers(tmp_path):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "lnmarkets.simulator", "--port", str(port), "--seed", "3", "--price", "50000"]
    process = subprocess.Popen([*command, "--control-token", "cli", "--no-rate-limits"])
    try:
        deadline = time.monotonic() + 8
        while True:
            try:
                ticker = requests.get(f"http://127.0.0.1:{port}/v3/futures/ticker", timeout=1).json()
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        assert abs(ticker["lastPrice"] - 50_000) < 1_000
        state = requests.get(f"http://127.0.0.1:{port}/_sim/state", headers={"Authorization": "Bearer cli"}, timeout=2)
        assert state.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=5)


def test_management_command_is_a_thin_wrapper():
    from lnmarkets.management.commands.lnm_simulator import Command

    parser = Command().create_parser("manage.py", "lnm_simulator")
    options = vars(parser.parse_args(["--port", "0", "--seed", "4", "--no-rate-limits", "--state-file", "x.json"]))
    from lnmarkets.simulator.cli import config_from

    config = config_from(options)
    assert (config.port, config.seed, config.rate_limits, config.state_file) == (0, 4, False, "x.json")
    assert config.host == "127.0.0.1"
