"""Stream v1 client against the simulator: typed events for every topic and trade event, reconnect and
re-subscribe after a drop, permanent failure on rejected credentials."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal

import pytest

from lnmarkets.client import RestClient
from lnmarkets.credentials import Credentials, static_provider
from lnmarkets.exceptions import AuthError
from lnmarkets.schemas import (
    TOPIC_BUCKETS,
    TOPIC_INDEX,
    TOPIC_ISOLATED_TRADES,
    TOPIC_LAST_PRICE,
    TOPIC_TICKER,
    StreamBuckets,
    StreamEvent,
    StreamIndex,
    StreamLastPrice,
    StreamTicker,
    StreamTradeEvent,
)
from lnmarkets.simulator import RunningSimulator
from lnmarkets.stream import StreamClient, stream_authenticate

ALL_TOPICS = (TOPIC_TICKER, TOPIC_LAST_PRICE, TOPIC_INDEX, TOPIC_BUCKETS, TOPIC_ISOLATED_TRADES)


async def wait_for(predicate: Callable[[], bool], within: float, step: float = 0.02) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(step)


def trade_events(events: list[StreamEvent]) -> list[str]:
    return [e.event for e in events if isinstance(e, StreamTradeEvent)]


async def test_every_topic_and_trade_event_arrives_typed(
    sim: RunningSimulator, creds: Credentials, client: RestClient
) -> None:
    events: list[StreamEvent] = []
    stream = StreamClient(sim.stream_url, static_provider(creds), ALL_TOPICS, events.append)
    task = asyncio.create_task(stream.run())
    try:
        await wait_for(lambda: stream.state == "live", 5)
        assert "futures:isolated:write" in stream.permissions
        await asyncio.to_thread(sim.control.step, 1)
        await wait_for(
            lambda: {StreamTicker, StreamLastPrice, StreamIndex, StreamBuckets} <= {type(e) for e in events}, 5
        )

        def trade_story() -> None:
            limit = client.isolated_trade_create(
                type="limit", side="buy", leverage=10, quantity=10, price=Decimal(90000)
            )
            client.isolated_trade_cancel(limit.id)
            filled = client.isolated_trade_create(type="market", side="buy", leverage=10, quantity=10)
            client.isolated_trade_close(filled.id)
            stop = client.isolated_trade_create(
                type="market", side="buy", leverage=10, quantity=10, stoploss=Decimal(98000)
            )
            take = client.isolated_trade_create(
                type="market", side="sell", leverage=10, quantity=10, takeprofit=Decimal(97000)
            )
            liq = client.isolated_trade_create(type="market", side="buy", leverage=100, quantity=10)
            runner = client.isolated_trade_create(type="market", side="sell", leverage=2, quantity=10)
            sim.control.settle_funding(Decimal("0.001"))
            sim.control.set_price(Decimal(96000))
            sim.control.step(1)
            assert {stop.id, take.id, liq.id, runner.id}

        await asyncio.to_thread(trade_story)
        expected = {"open", "canceled", "filled", "closed", "funding", "stoploss", "takeprofit", "liquidation"}
        await wait_for(lambda: expected <= set(trade_events(events)), 5)
        assert stream.decode_errors == 0
        funding = next(e for e in events if isinstance(e, StreamTradeEvent) and e.event == "funding")
        assert funding.trade.liquidation_price is not None
    finally:
        stream.stop()
        await asyncio.wait_for(task, 5)
    assert stream.state == "stopped"


async def test_dropped_stream_reconnects_reauthenticates_and_resubscribes(
    sim: RunningSimulator, creds: Credentials, client: RestClient
) -> None:
    events: list[StreamEvent] = []
    states: list[str] = []
    stream = StreamClient(
        sim.stream_url,
        static_provider(creds),
        (TOPIC_TICKER, TOPIC_ISOLATED_TRADES),
        events.append,
        backoff_initial=0.2,
        backoff_max=0.5,
        on_state=states.append,
    )
    task = asyncio.create_task(stream.run())
    try:
        await wait_for(lambda: stream.state == "live", 5)
        await asyncio.to_thread(sim.control.inject_fault, "stream_drop", seconds=1.0)
        await wait_for(lambda: stream.reconnects >= 1, 5)
        await wait_for(lambda: stream.state == "live" and stream.connects >= 2, 10)
        events.clear()
        await asyncio.to_thread(sim.control.step, 1)
        await asyncio.to_thread(client.isolated_trade_create, type="market", side="buy", leverage=10, quantity=10)
        await wait_for(lambda: any(isinstance(e, StreamTicker) for e in events), 5)
        await wait_for(lambda: "filled" in trade_events(events), 5)  # private topic again: re-authenticated
        assert "backoff" in states
    finally:
        stream.stop()
        await asyncio.wait_for(task, 5)


async def test_rejected_credentials_stop_the_stream(sim: RunningSimulator, creds: Credentials) -> None:
    wrong = static_provider(Credentials(creds.key, "not-the-secret", creds.passphrase))
    stream = StreamClient(sim.stream_url, wrong, (TOPIC_ISOLATED_TRADES,), lambda e: None)
    with pytest.raises(AuthError):
        await asyncio.wait_for(stream.run(), 10)
    assert stream.state == "failed"
    with pytest.raises(AuthError):
        await stream_authenticate(sim.stream_url, wrong, request_timeout=5)


def test_backoff_grows_from_1s_to_30s_with_jitter() -> None:
    low = StreamClient("ws://127.0.0.1:1/v1", None, (), lambda e: None, rng=lambda: 0.0)
    high = StreamClient("ws://127.0.0.1:1/v1", None, (), lambda e: None, rng=lambda: 1.0)
    assert [high.backoff_delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert [low.backoff_delay(n) for n in range(7)] == [0.5, 1, 2, 4, 8, 15, 15]
