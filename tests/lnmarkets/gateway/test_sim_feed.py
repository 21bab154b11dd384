"""Market feed against the simulator: live on the stream, HTTP fallback while the stream is down, silent or frozen,
back to live when it recovers; subscriptions; the process-wide accessor."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest

from lnmarkets.feed import MarketFeed, TickerSnapshot, get_market_feed, stop_market_feeds
from lnmarkets.ratelimit import InProcessRateLimiter
from lnmarkets.simulator import RunningSimulator


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> float:
    """Seconds it took; AssertionError after ``timeout``."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError("condition not met in time")
        time.sleep(step)
    return time.monotonic() - started


@pytest.fixture
def make_feed(sim: RunningSimulator) -> Iterator[Callable[..., MarketFeed]]:
    feeds: list[MarketFeed] = []

    def make(**options: object) -> MarketFeed:
        feed = MarketFeed(sim.rest_url, sim.stream_url, rate_limiter=InProcessRateLimiter(), **options)  # type: ignore[arg-type]
        feeds.append(feed)
        feed.start()
        return feed

    yield make
    for feed in feeds:
        feed.stop()


def test_live_feed_exposes_ticker_age_and_calls_subscribers(make_feed, ticker_pump, sim: RunningSimulator) -> None:
    feed = make_feed()
    received: list[TickerSnapshot] = []
    unsubscribe = feed.subscribe(received.append)
    ticker_pump(0.2)
    wait_until(lambda: feed.state == "live" and feed.latest() is not None and feed.latest().bid is not None, 10)
    snapshot = feed.latest()
    assert snapshot is not None
    assert snapshot.source == "stream"
    assert isinstance(snapshot.last_price, Decimal)
    assert snapshot.exchange_time.tzinfo is not None
    assert snapshot.buckets
    assert snapshot.ask is not None
    assert (feed.age() or 99) < 1
    polls = feed.polls  # at most the one start-up poll made before the first stream tick
    wait_until(lambda: len(received) >= 3, 5)
    unsubscribe()
    count = len(received)
    time.sleep(0.6)
    assert len(received) == count
    assert feed.polls == polls <= 1  # no HTTP while the stream is live


@pytest.mark.slow  # a fault scenario that waits on real clocks: the PostgreSQL pass runs it
def test_silent_stream_is_detected_within_10s_feed_falls_back_then_recovers(
    make_feed, ticker_pump, sim: RunningSimulator
) -> None:
    """Production defaults for detection: stale_after=5 s, silence_timeout=10 s, heartbeat 5 s. Only the JSON-RPC
    request timeout is scaled (2 s) so the reconnect that lands inside the silence fails fast."""
    feed = make_feed(request_timeout=2.0)
    ticker_pump(0.2)
    wait_until(lambda: feed.state == "live", 10)
    states: list[tuple[float, str, str]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            states.append((time.monotonic(), feed.state, feed.stream_state))
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    injected = time.monotonic()
    sim.control.inject_fault("stream_silence", seconds=12)
    try:
        wait_until(lambda: feed.state == "fallback", 8)
        fallback_at = time.monotonic() - injected
        assert 4.0 <= fallback_at <= 7.0
        wait_until(lambda: feed.stream.reconnects >= 1, 11)
        assert feed.stream.last_loss_at is not None
        assert feed.stream.last_loss_at - injected <= 10.3  # silence detected within the 10 s budget
        assert "silent" in (feed.stream.last_error or "")
        snapshot = feed.latest()
        assert snapshot is not None
        assert snapshot.source == "http"
        wait_until(lambda: feed.state == "live", 20)
    finally:
        stop.set()
        watcher.join()
    assert feed.latest().source == "stream"
    poll_times = [t for t, state, _ in states if state == "fallback"]
    assert poll_times
    assert feed.polls <= (poll_times[-1] - poll_times[0]) / feed.poll_interval + 3  # ≤ 1 request/s


def test_dropped_stream_uses_http_then_returns_to_stream(make_feed, ticker_pump, sim: RunningSimulator) -> None:
    feed = make_feed(stale_after=1.0, backoff_initial=0.2, backoff_max=1.0)
    ticker_pump(0.2)
    wait_until(lambda: feed.state == "live", 10)
    sim.control.inject_fault("stream_drop", seconds=3)
    wait_until(lambda: feed.state == "fallback", 4)
    assert feed.latest().source == "http"
    wait_until(lambda: feed.state == "live", 10)
    assert feed.stream.reconnects >= 1


@pytest.mark.slow  # a fault scenario that waits on real clocks: the PostgreSQL pass runs it
def test_frozen_exchange_clock_is_stale_not_live(make_feed, ticker_pump, sim: RunningSimulator) -> None:
    feed = make_feed(stale_after=1.0)
    ticker_pump(0.2)
    wait_until(lambda: feed.state == "live", 10)
    sim.control.inject_fault("stale_ticker", seconds=4)
    wait_until(lambda: feed.state == "stale", 4)
    wait_until(lambda: feed.state == "live", 8)


def test_no_stream_and_no_http_is_stale() -> None:
    feed = MarketFeed(
        "http://127.0.0.1:1/v3", "ws://127.0.0.1:1/v1", stale_after=0.5, rate_limiter=InProcessRateLimiter()
    )
    feed.start()
    try:
        time.sleep(1.2)
        assert feed.state == "stale"
        assert feed.latest() is None
        assert feed.age() is None
        assert feed.poll_errors >= 1
    finally:
        feed.stop()


def test_poll_interval_below_one_second_is_refused() -> None:
    with pytest.raises(ValueError, match="poll_interval"):
        MarketFeed("http://127.0.0.1:1/v3", "ws://127.0.0.1:1/v1", poll_interval=0.5)


def test_one_feed_per_network_per_process(settings, sim: RunningSimulator) -> None:
    settings.LNMARKETS_URLS = {"simulator": {"rest": sim.rest_url, "stream": sim.stream_url}}
    try:
        first = get_market_feed("simulator")
        assert get_market_feed("simulator") is first
        assert first.stream.url == sim.stream_url
    finally:
        stop_market_feeds()
