"""MarketPublisher: bounded-rate, coalescing fan-out of feed ticks, with the cached state the snapshot reads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from lnmarkets.feed import TickerSnapshot
from realtime import market as market_mod
from realtime.market import MarketPublisher, MarketStatus, market_state


class FakeFeed:
    def __init__(self) -> None:
        self.state: MarketStatus = "live"
        self.callbacks: list[Callable[[TickerSnapshot], None]] = []

    def subscribe(self, callback: Callable[[TickerSnapshot], None]) -> Callable[[], None]:
        self.callbacks.append(callback)
        return lambda: self.callbacks.remove(callback)

    def tick(self, price: str) -> None:
        now = datetime.now(UTC)
        snapshot = TickerSnapshot(
            last_price=Decimal(price),
            index=Decimal(price),
            bid=Decimal(price),
            ask=Decimal(price) + 1,
            buckets=(),
            funding_rate=None,
            exchange_time=now,
            received_at=now,
            received_monotonic=time.monotonic(),
            source="stream",
        )
        for callback in list(self.callbacks):
            callback(snapshot)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    lock = threading.Lock()

    def capture(group: str, message: dict[str, Any]) -> None:
        with lock:
            out.append((group, message))

    monkeypatch.setattr(market_mod, "group_send", capture)
    return out


def test_publish_tick_stores_and_sends(sent: list[tuple[str, dict[str, Any]]]) -> None:
    feed = FakeFeed()
    publisher = MarketPublisher(feed, "simulator")
    data = publisher.publish_tick(_snapshot(feed, "100000.5"))
    assert sent == [("market.simulator", {"type": "market.tick", "market": data})]
    assert data["last"] == "100000.5"
    assert data["ask"] == "100001.5"
    assert data["state"] == "live"
    assert market_state("simulator")["last"] == "100000.5"
    assert market_state("signet")["state"] == "stale"


def test_rate_is_bounded_and_ticks_coalesce(sent: list[tuple[str, dict[str, Any]]]) -> None:
    feed = FakeFeed()
    publisher = MarketPublisher(feed, "simulator", max_rate_hz=5, status_interval=10)
    publisher.start()
    try:
        start = time.monotonic()
        while time.monotonic() - start < 1.0:
            feed.tick(str(100000 + int((time.monotonic() - start) * 1000)))
            time.sleep(0.005)
        time.sleep(0.3)
    finally:
        publisher.stop()
    ticks = [m for _, m in sent if m["type"] == "market.tick"]
    assert 3 <= len(ticks) <= 7  # 5 Hz over ~1 s, never one per feed tick (~150)
    assert publisher.coalesced > 100
    assert feed.callbacks == []


def test_a_feed_ticking_at_the_bound_is_not_delayed_by_publish_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The interval counts from each publish's start: a slow send must not push every later tick back (which would
    make a feed ticking exactly at ``max_rate_hz`` lag more with each tick, then drop ticks)."""
    published: list[str] = []

    def slow_send(group: str, message: dict[str, Any]) -> None:
        time.sleep(0.15)
        published.append(message["market"]["last"])

    monkeypatch.setattr(market_mod, "group_send", slow_send)
    feed = FakeFeed()
    publisher = MarketPublisher(feed, "simulator", max_rate_hz=4, status_interval=10)
    publisher.start()
    try:
        next_at = time.monotonic()
        for i in range(8):
            next_at += 0.25
            time.sleep(max(0.0, next_at - time.monotonic()))
            feed.tick(str(100000 + i))
        time.sleep(0.5)
    finally:
        publisher.stop()
    assert publisher.coalesced <= 1, published  # with the interval counted from the end: 3 or more of 8 dropped
    assert len(published) >= 7


def test_status_turns_stale_when_the_feed_dies(sent: list[tuple[str, dict[str, Any]]]) -> None:
    feed = FakeFeed()
    publisher = MarketPublisher(feed, "simulator")
    publisher.publish_tick(_snapshot(feed, "100000"))
    feed.state = "stale"
    data = publisher.publish_status()
    assert data["state"] == "stale"
    assert sent[-1] == ("market.simulator", {"type": "market.status", "market": data})


def test_24h_window_high_low_change(sent: list[tuple[str, dict[str, Any]]]) -> None:
    publisher = MarketPublisher(FakeFeed(), "simulator")
    publisher._stats(datetime(2026, 1, 1, 0, 0, tzinfo=UTC), Decimal(100))
    publisher._stats(datetime(2026, 1, 1, 1, 0, tzinfo=UTC), Decimal(120))
    high, low, change, start = publisher._stats(datetime(2026, 1, 1, 2, 0, tzinfo=UTC), Decimal(90))
    assert (high, low, change) == ("120", "90", "-10.00")
    assert start == "2026-01-01T00:00:00+00:00"
    high, low, change, start = publisher._stats(datetime(2026, 1, 2, 1, 30, tzinfo=UTC), Decimal(90))
    assert (high, low) == ("90", "90")  # the 00:00 and 01:00 samples left the 24 h window


def test_24h_high_low_keep_every_tick_not_one_sample_a_minute(sent: list[tuple[str, dict[str, Any]]]) -> None:
    publisher = MarketPublisher(FakeFeed(), "simulator")
    t0 = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    publisher._stats(t0, Decimal(100))
    publisher._stats(t0 + timedelta(seconds=10), Decimal(95))  # same minute: a dip between samples
    publisher._stats(t0 + timedelta(seconds=20), Decimal(104))
    high, low, change, _ = publisher._stats(t0 + timedelta(seconds=30), Decimal(101))
    assert (high, low, change) == ("104", "95", "1.00")
    high, low, _, _ = publisher._stats(t0 + timedelta(minutes=5), Decimal(102))
    assert (high, low) == ("104", "95")


def _snapshot(feed: FakeFeed, price: str) -> TickerSnapshot:
    captured: list[TickerSnapshot] = []
    feed.callbacks.append(captured.append)
    feed.tick(price)
    feed.callbacks.remove(captured.append)
    return captured[0]
