"""Opt-in checks of the gateway against the real LN Markets signet (``pytest -m live tests/live``).

Needs LNM_SIGNET_KEY, LNM_SIGNET_SECRET and LNM_SIGNET_PASSPHRASE in the environment (a signet key with
account:read and futures:isolated:read/write); the order probe also needs LNM_SIGNET_ALLOW_ORDERS=1. Each test
records one fact the spec marks [U] (docs/protocol.md §12) and prints it, so the run can be pasted into docs/.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from decimal import ROUND_FLOOR, Decimal

import pytest

from lnmarkets.client import RestClient
from lnmarkets.credentials import Credentials, static_provider
from lnmarkets.exceptions import AuthError, LNMarketsError
from lnmarkets.networks import network_urls
from lnmarkets.ratelimit import InProcessRateLimiter
from lnmarkets.schemas import TOPIC_TICKER, StreamEvent, StreamTicker
from lnmarkets.stream import StreamClient
from lnmarkets.verify import verify_credentials

pytestmark = pytest.mark.live

URLS = network_urls("signet")
LIMITER = InProcessRateLimiter()


@pytest.fixture(scope="module")
def creds() -> Credentials:
    names = ("LNM_SIGNET_KEY", "LNM_SIGNET_SECRET", "LNM_SIGNET_PASSPHRASE")
    if not all(os.environ.get(n) for n in names):
        pytest.skip("signet credentials not set (LNM_SIGNET_KEY/SECRET/PASSPHRASE)")
    return Credentials(*(os.environ[n] for n in names))


@pytest.fixture(scope="module")
def client(creds: Credentials) -> RestClient:
    return RestClient(URLS.rest, static_provider(creds), rate_limiter=LIMITER, timeout=15)


def test_public_endpoints_parse() -> None:
    public = RestClient(URLS.rest, None, rate_limiter=LIMITER, timeout=15)
    assert public.ping() == "pong"
    ticker = public.futures_ticker_get()
    print("signet ticker:", ticker.last_price, ticker.index, len(ticker.prices), "buckets")  # noqa: T201


def test_account_and_lists_parse(client: RestClient) -> None:
    account = client.account_get()
    assert account.id
    client.isolated_trades_running_list()
    client.isolated_trades_open_list()
    client.isolated_trades_closed_list(limit=5)
    client.isolated_trades_canceled_list(limit=5)
    client.isolated_funding_fees_list(limit=5)


def test_verify_credentials_reports_permissions(creds: Credentials) -> None:
    result = verify_credentials("signet", creds, timeout=15, rate_limiter=LIMITER)
    print("signet permissions:", result.permissions, "via", result.permissions_source)  # noqa: T201
    assert result.account_id


def test_wrong_secret_is_auth_error(creds: Credentials) -> None:
    wrong = RestClient(
        URLS.rest, static_provider(Credentials(creds.key, "x" * 20, creds.passphrase)), rate_limiter=LIMITER, timeout=15
    )
    with pytest.raises(AuthError) as info:
        wrong.account_get()
    print("signet bad-signature answer:", info.value.status, info.value.code)  # noqa: T201


def test_stream_ticker_arrives() -> None:
    async def run() -> StreamTicker:
        got: list[StreamEvent] = []
        stream = StreamClient(URLS.stream, None, (TOPIC_TICKER,), got.append)
        task = asyncio.create_task(stream.run())
        try:
            for _ in range(300):
                tickers = [e for e in got if isinstance(e, StreamTicker)]
                if tickers:
                    return tickers[0]
                await asyncio.sleep(0.1)
            raise AssertionError("no ticker within 30 s")
        finally:
            stream.stop()
            await asyncio.wait_for(task, 5)

    print("signet stream ticker:", asyncio.run(run()))  # noqa: T201


def test_duplicate_client_id_behaviour(client: RestClient) -> None:
    """docs/reliability.md T02: does LN Markets accept a repeated clientId? Two resting limit orders far below the
    market, then canceled."""
    if os.environ.get("LNM_SIGNET_ALLOW_ORDERS") != "1":
        pytest.skip("set LNM_SIGNET_ALLOW_ORDERS=1 to place (and cancel) two tiny signet limit orders")
    price = (client.futures_ticker_get().last_price / 2 / Decimal("0.5")).to_integral_value(ROUND_FLOOR) * Decimal(
        "0.5"
    )
    cid = f"axisor-dup-{uuid.uuid4().hex[:12]}"
    first = client.isolated_trade_create(type="limit", side="buy", leverage=1, quantity=1, price=price, client_id=cid)
    try:
        second = client.isolated_trade_create(
            type="limit", side="buy", leverage=1, quantity=1, price=price, client_id=cid
        )
        print("signet duplicate clientId: ACCEPTED (not an idempotency key)", second.id)  # noqa: T201
        client.isolated_trade_cancel(second.id)
    except LNMarketsError as exc:
        print("signet duplicate clientId: REJECTED", exc.status, exc.code)  # noqa: T201
    finally:
        client.isolated_trade_cancel(first.id)
