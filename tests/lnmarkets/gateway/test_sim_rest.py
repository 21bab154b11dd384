"""Every REST call against the simulator round-trips into its typed model; injected faults get the documented
treatment (retry, wait, give up, or ambiguous-and-exactly-once)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from lnmarkets.client import RestClient
from lnmarkets.credentials import Credentials, static_provider
from lnmarkets.exceptions import (
    AmbiguousOutcomeError,
    AuthError,
    InsufficientFundsError,
    InvalidOrderError,
    NetworkUnreachableError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    TemporaryError,
)
from lnmarkets.ratelimit import NullRateLimiter
from lnmarkets.schemas import Account, Candle, FundingFee, Page, ServerTime, Ticker, Trade
from lnmarkets.simulator import RunningSimulator

TRADE_PATH = "/v3/futures/isolated/trade"


def market_buy(client: RestClient, **extra: object) -> Trade:
    return client.isolated_trade_create(type="market", side="buy", leverage=10, quantity=100, **extra)  # type: ignore[arg-type]


def test_public_calls(client: RestClient) -> None:
    assert client.ping() == "pong"
    assert isinstance(client.time_get(), ServerTime)
    ticker = client.futures_ticker_get()
    assert isinstance(ticker, Ticker)
    assert ticker.last_price == Decimal(100000)
    page = client.futures_candles_list(from_=datetime.now(UTC) - timedelta(hours=1), limit=5, range="1m")
    assert isinstance(page, Page)
    assert all(isinstance(c, Candle) for c in page.data)


def test_account_and_trade_lifecycle_round_trip(client: RestClient, sim: RunningSimulator) -> None:
    account = client.account_get()
    assert isinstance(account, Account)
    assert account.balance == 1_000_000

    cid = f"cid-{uuid.uuid4().hex[:8]}"
    running = market_buy(client, client_id=cid, stoploss=Decimal("95000"), takeprofit=Decimal("120000.5"))
    assert running.state == "running"
    assert running.client_id == cid
    assert running.stoploss == Decimal(95000)
    limit = client.isolated_trade_create(
        type="limit", side="sell", leverage=Decimal("2.5"), margin=5000, price=Decimal("110000.5")
    )
    assert limit.state == "open"
    assert limit.price == Decimal("110000.5")

    assert [t.id for t in client.isolated_trades_running_list()] == [running.id]
    assert [t.id for t in client.isolated_trades_open_list()] == [limit.id]

    assert client.isolated_trade_stoploss_set(running.id, Decimal("96000.5")).stoploss == Decimal("96000.5")
    assert client.isolated_trade_stoploss_remove(running.id).stoploss == 0
    assert client.isolated_trade_takeprofit_set(running.id, Decimal(125000)).takeprofit == Decimal(125000)
    assert client.isolated_trade_takeprofit_remove(running.id).takeprofit == 0
    assert client.isolated_trade_add_margin(running.id, 1000).margin == running.margin + 1000
    sim.control.set_price(Decimal(102000))
    cashed = client.isolated_trade_cash_in(running.id, 100)
    assert cashed.sum_cash_in_pl + cashed.sum_cash_in_margin == 100

    assert client.isolated_trade_cancel(limit.id).state == "canceled"
    other = client.isolated_trade_create(type="limit", side="buy", leverage=10, quantity=10, price=Decimal(90000))
    assert [t.id for t in client.isolated_trades_cancel_all()] == [other.id]
    sim.control.settle_funding(Decimal("0.0001"))
    fees = client.isolated_funding_fees_list(trade_id=running.id)
    assert all(isinstance(f, FundingFee) for f in fees.data)
    assert fees.data
    assert fees.data[0].trade_id == running.id

    closed = client.isolated_trade_close(running.id)
    assert closed.state == "closed"
    assert closed.exit_price is not None

    since = datetime.now(UTC) - timedelta(hours=1)
    closed_page = client.isolated_trades_closed_list(from_=since, limit=10)
    assert [t.id for t in closed_page.data] == [running.id]
    canceled_page = client.isolated_trades_canceled_list(from_=since)
    assert {t.id for t in canceled_page.data} == {limit.id, other.id}
    assert client.find_trade_by_client_id(cid) == closed_page.data[0]
    assert client.find_trade_by_client_id("absent") is None


def test_exchange_rejections_are_typed(client: RestClient, sim: RunningSimulator, creds: Credentials) -> None:
    with pytest.raises(InvalidOrderError):
        client.isolated_trade_create(type="market", side="buy", leverage=101, quantity=100)
    with pytest.raises(InsufficientFundsError):
        client.isolated_trade_create(type="market", side="buy", leverage=1, quantity=400_000)
    with pytest.raises(NotFoundError):
        client.isolated_trade_close(str(uuid.uuid4()))
    wrong = RestClient(
        sim.rest_url, static_provider(Credentials(creds.key, "wrong", creds.passphrase)), rate_limiter=NullRateLimiter()
    )
    with pytest.raises(AuthError):
        wrong.account_get()
    reader = sim.control.create_account(scopes=["account:read", "futures:isolated:read"])
    read_only = RestClient(
        sim.rest_url,
        static_provider(Credentials(reader.key, reader.secret, reader.passphrase)),
        rate_limiter=NullRateLimiter(),
    )
    with pytest.raises(PermissionDeniedError):
        market_buy(read_only)


def test_429_retry_after_is_honoured(client: RestClient, sim: RunningSimulator) -> None:
    sim.control.inject_fault("status", method="GET", path="/v3/account", status=429, retry_after=2, count=1)
    started = time.monotonic()
    assert client.account_get().balance == 1_000_000
    assert time.monotonic() - started >= 2.0


def test_429_on_an_order_post_is_rate_limited_and_not_resent(client: RestClient, sim: RunningSimulator) -> None:
    sim.control.inject_fault("status", method="POST", path=TRADE_PATH, status=429, retry_after=3, count=1)
    with pytest.raises(RateLimitedError) as info:
        market_buy(client, client_id="rl-1")
    assert info.value.retry_after == 3
    assert sim.control.requests_for_client_id("rl-1") == 1
    assert client.isolated_trades_running_list() == ()


def test_503_is_retried_with_backoff_then_given_up(client: RestClient, sim: RunningSimulator, sim_account) -> None:
    sim.control.inject_fault("status", method="GET", path="/v3/account", status=503, count=10)
    started = time.monotonic()
    with pytest.raises(TemporaryError) as info:
        client.account_get()
    assert info.value.status == 503
    assert time.monotonic() - started < 5
    statuses = sim.control.request_log_full(sim_account.key)["statuses"]
    assert statuses.count(503) == client.max_retries + 1
    sim.control.clear_faults()
    sim.control.inject_fault("status", method="GET", path="/v3/account", status=503, count=2)
    assert client.account_get().balance == 1_000_000  # recovered within the bound


def test_post_answered_after_the_timeout_is_ambiguous_and_sent_once(sim: RunningSimulator, creds: Credentials) -> None:
    client = RestClient(sim.rest_url, static_provider(creds), timeout=0.5, rate_limiter=NullRateLimiter())
    sim.control.inject_fault("accept_then_delay", method="POST", path=TRADE_PATH, seconds=1.5)
    cid = f"amb-{uuid.uuid4().hex[:8]}"
    with pytest.raises(AmbiguousOutcomeError) as info:
        market_buy(client, client_id=cid)
    assert info.value.client_id == cid
    assert sim.control.requests_for_client_id(cid) == 1
    time.sleep(1.2)  # let the exchange finish answering the abandoned request
    found = client.find_trade_by_client_id(cid)
    assert found is not None
    assert found.state == "running"
    assert sim.control.requests_for_client_id(cid) == 1


@pytest.mark.parametrize("status", [502, 504])
def test_accepted_then_gateway_error_is_ambiguous(client: RestClient, sim: RunningSimulator, status: int) -> None:
    sim.control.inject_fault("accept_then_status", method="POST", path=TRADE_PATH, status=status)
    cid = f"gw-{status}"
    with pytest.raises(AmbiguousOutcomeError):
        market_buy(client, client_id=cid)
    assert sim.control.requests_for_client_id(cid) == 1
    assert client.find_trade_by_client_id(cid) is not None


def test_503_on_an_order_post_was_not_processed(client: RestClient, sim: RunningSimulator) -> None:
    sim.control.inject_fault("status", method="POST", path=TRADE_PATH, status=503)
    with pytest.raises(TemporaryError) as info:
        market_buy(client, client_id="u-1")
    assert not isinstance(info.value, AmbiguousOutcomeError)
    assert sim.control.requests_for_client_id("u-1") == 1
    assert client.find_trade_by_client_id("u-1") is None


def test_unreachable_exchange() -> None:
    client = RestClient("http://127.0.0.1:1/v3", None, rate_limiter=NullRateLimiter(), max_retries=1, backoff_base=0.01)
    with pytest.raises(NetworkUnreachableError):
        client.futures_ticker_get()
