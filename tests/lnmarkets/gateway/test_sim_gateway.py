"""AccountGateway against the simulator: cache kept fresh by REST and trade events, order calls, registry."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from lnmarkets.credentials import Credentials, CredentialsProvider
from lnmarkets.exceptions import AmbiguousOutcomeError
from lnmarkets.gateway import AccountGateway, drop_account_gateway, get_account_gateway
from lnmarkets.ratelimit import InProcessRateLimiter
from lnmarkets.schemas import StreamTradeEvent
from lnmarkets.simulator import RunningSimulator


def wait_until(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.fixture
def provider_calls(creds: Credentials) -> tuple[CredentialsProvider, list[int]]:
    calls: list[int] = []

    def provide() -> Credentials:
        calls.append(1)
        return creds

    return provide, calls


@pytest.fixture
def gateway(sim: RunningSimulator, provider_calls) -> Iterator[AccountGateway]:
    provider, _ = provider_calls
    gw = AccountGateway(
        "acct-1",
        "simulator",
        provider,
        rest_url=sim.rest_url,
        stream_url=sim.stream_url,
        rate_limiter=InProcessRateLimiter(),
        refresh_debounce=0.05,
    )
    yield gw
    gw.stop()


def test_refresh_fills_the_cache(gateway: AccountGateway) -> None:
    assert gateway.state().source == "empty"
    state = gateway.refresh()
    assert state.balance == 1_000_000
    assert state.running == ()
    assert state.open == ()
    assert state.fetched_at is not None
    assert state.fetched_at.tzinfo is not None


def test_orders_and_events_keep_the_cache_fresh(gateway: AccountGateway, sim: RunningSimulator) -> None:
    events: list[StreamTradeEvent] = []
    gateway.on_trade_event(events.append)
    gateway.start_stream()
    wait_until(lambda: gateway.stream_state == "live" and gateway.state().source == "rest", 5)

    trade = gateway.isolated_trade_create(type="market", side="buy", leverage=10, quantity=100, client_id="g-1")
    assert gateway.state().trade(trade.id) == trade
    limit = gateway.isolated_trade_create(type="limit", side="buy", leverage=10, quantity=10, price=Decimal(90000))
    assert [t.id for t in gateway.state().open] == [limit.id]
    gateway.isolated_trade_stoploss_set(trade.id, Decimal(95000))
    assert gateway.state().trade(trade.id).stoploss == Decimal(95000)  # type: ignore[union-attr]
    gateway.isolated_trade_add_margin(trade.id, 500)
    assert gateway.state().trade(trade.id).margin == trade.margin + 500  # type: ignore[union-attr]
    gateway.isolated_trade_cancel(limit.id)
    assert gateway.state().open == ()

    wait_until(lambda: {"filled", "open", "canceled"} <= {e.event for e in events}, 5)
    wait_until(lambda: not gateway.state().dirty and gateway.state().balance is not None, 5)
    assert gateway.state().balance < 1_000_000  # type: ignore[operator]

    # closed by the exchange (take-profit), not by us: the event removes it, the refresh brings the balance
    gateway.isolated_trade_takeprofit_set(trade.id, Decimal(101000))
    before = gateway.state().balance
    sim.control.set_price(Decimal(102000))
    sim.control.step(1)
    wait_until(lambda: "takeprofit" in {e.event for e in events}, 5)
    wait_until(lambda: gateway.state().running == () and not gateway.state().dirty, 5)
    assert gateway.state().balance > before  # type: ignore[operator]


def test_funding_event_updates_margin(gateway: AccountGateway, sim: RunningSimulator) -> None:
    gateway.start_stream()
    wait_until(lambda: gateway.stream_state == "live", 5)
    trade = gateway.isolated_trade_create(type="market", side="buy", leverage=10, quantity=1000)
    sim.control.settle_funding(Decimal("0.001"))
    wait_until(lambda: gateway.state().trade(trade.id).margin < trade.margin, 5)  # type: ignore[union-attr]


def test_ambiguous_order_marks_cache_dirty(gateway: AccountGateway, sim: RunningSimulator) -> None:
    gateway.refresh()
    sim.control.inject_fault("accept_then_status", method="POST", path="/v3/futures/isolated/trade", status=504)
    with pytest.raises(AmbiguousOutcomeError):
        gateway.isolated_trade_create(type="market", side="buy", leverage=10, quantity=10, client_id="amb-g")
    assert gateway.state().dirty
    assert gateway.client.find_trade_by_client_id("amb-g") is not None
    assert not gateway.refresh().dirty


def test_credentials_are_fetched_per_request_and_not_kept(gateway: AccountGateway, provider_calls, creds) -> None:
    _, calls = provider_calls
    gateway.refresh()
    assert len(calls) >= 3
    for value in vars(gateway).values():
        assert value is not creds
    for value in vars(gateway.client).values():
        assert value is not creds
        assert value != creds.secret


def test_registry_shares_one_gateway_per_account(sim: RunningSimulator, creds: Credentials) -> None:
    built: list[AccountGateway] = []

    def factory() -> AccountGateway:
        gw = AccountGateway("acct-reg", "simulator", lambda: creds, rest_url=sim.rest_url, stream_url=sim.stream_url)
        built.append(gw)
        return gw

    try:
        first = get_account_gateway("acct-reg", factory)
        assert get_account_gateway("acct-reg", factory) is first
        assert len(built) == 1
    finally:
        drop_account_gateway("acct-reg")
    assert get_account_gateway("acct-reg", factory) is not first
    drop_account_gateway("acct-reg")
