"""Market ticks to the dashboard: the ``MarketPublisher`` and the cached market state the snapshot reads.

``MarketPublisher(feed, network, max_rate_hz=2)`` subscribes to a ``MarketFeed`` and, in its own thread, sends at
most ``max_rate_hz`` ``market.tick`` events per second to the ``market.<network>`` group (ticks in between are
coalesced: the newest wins), plus a ``market.status`` event every ``status_interval`` seconds when no tick arrives,
so a dead feed turns ``stale`` on every page. Each published state is also written to the Django cache (Redis in
production, so every Daphne process sees it), which the snapshot and the HTTP fallback read: they never touch the
feed or the exchange.

24 h high/low/change are computed from one-minute buckets kept 24 h: the exchange's own 1-minute candles of the
last 24 h when the publisher is given ``history`` (``realtime.candles.day_window``; a true 24 h window from the first
tick), then its own ticks. ``window_start`` says how far back they go, so without history a freshly started process
shows "since <time>", not a made-up 24 h figure.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal, Protocol, TypedDict

from django.core.cache import cache
from django.utils import timezone

from axisor_bus.publish import group_send, market_group
from config.metrics import count_tick
from lnmarkets.feed import TickerSnapshot

logger = logging.getLogger(__name__)

FRESHNESS_LIMIT_S = 15.0
SAMPLE_EVERY = timedelta(minutes=1)
WINDOW = timedelta(hours=24)
CACHE_TTL_S = 24 * 3600

MarketStatus = Literal["live", "fallback", "stale"]


class MarketData(TypedDict):
    """Market display fields. ``age_ms`` is measured by the server when the message is built; the browser adds its
    own time since receipt and marks the data stale past ``stale_after_ms``."""

    network: str
    last: str | None
    index: str | None
    bid: str | None
    ask: str | None
    high_24h: str | None
    low_24h: str | None
    change_24h_pct: str | None
    window_start: str | None
    exchange_time: str | None
    received_at: str | None
    age_ms: int | None
    source: str | None
    state: MarketStatus
    stale_after_ms: int


class _Feed(Protocol):
    @property
    def state(self) -> MarketStatus: ...

    def subscribe(self, callback: Callable[[TickerSnapshot], None]) -> Callable[[], None]: ...


def _cache_key(network: str) -> str:
    return f"realtime:market:{network}"


def _empty(network: str) -> MarketData:
    return {
        "network": network,
        "last": None,
        "index": None,
        "bid": None,
        "ask": None,
        "high_24h": None,
        "low_24h": None,
        "change_24h_pct": None,
        "window_start": None,
        "exchange_time": None,
        "received_at": None,
        "age_ms": None,
        "source": None,
        "state": "stale",
        "stale_after_ms": int(FRESHNESS_LIMIT_S * 1000),
    }


def with_age(data: MarketData, now: datetime | None = None) -> MarketData:
    """``data`` with ``age_ms`` measured now, and ``state`` forced to ``stale`` past the freshness limit."""
    out: MarketData = {**data}
    if not data["received_at"]:
        out["age_ms"], out["state"] = None, "stale"
        return out
    age = (now or timezone.now()) - datetime.fromisoformat(data["received_at"])
    out["age_ms"] = max(0, int(age.total_seconds() * 1000))
    if age.total_seconds() > FRESHNESS_LIMIT_S:
        out["state"] = "stale"
    return out


def market_state(network: str) -> MarketData:
    """The last published market state of ``network`` (``stale`` with no prices when nothing is known)."""
    data: MarketData | None = cache.get(_cache_key(network))
    return with_age(data) if data else _empty(network)


def store_market_state(data: MarketData) -> None:
    """Write ``data`` as the network's current market state (the publisher does; tests may)."""
    cache.set(_cache_key(data["network"]), data, CACHE_TTL_S)
    _shared.pop(data["network"], None)  # this process reads it back at once


# The market part of every snapshot (issue #14): the same for every user of a network and stored once per tick, so
# a process reads it from the cache at most once per SHARED_REFRESH_S (half the publisher's 2 ticks/s period),
# not once per request; only its age is measured per request.
SHARED_REFRESH_S = 0.25
_shared: dict[str, tuple[float, MarketData]] = {}
_shared_guard = threading.Lock()


def shared_market_state(network: str) -> MarketData:
    """``market_state(network)``, read from the cache at most once per ``SHARED_REFRESH_S`` in this process."""
    now = time.monotonic()
    held = _shared.get(network)
    if held is None or now - held[0] >= SHARED_REFRESH_S:
        with _shared_guard:
            held = _shared.get(network)
            if held is None or now - held[0] >= SHARED_REFRESH_S:
                held = _shared[network] = (now, market_state(network))
    return with_age(held[1])


def forget_shared_market_state() -> None:
    """Drop this process's copies (a test that clears the cache)."""
    _shared.clear()


class MarketPublisher:
    """Fan the feed's ticks out to ``market.<network>`` at a bounded rate; see the module docstring.

    ``start``/``stop`` manage one daemon thread; ``publish_tick`` and ``publish_status`` are the synchronous steps
    (used by the thread, callable from tests).
    """

    def __init__(
        self,
        feed: _Feed,
        network: str,
        *,
        max_rate_hz: float = 2.0,
        status_interval: float = 5.0,
        history: Callable[[], list[tuple[datetime, Decimal, Decimal, Decimal]]] | None = None,
    ) -> None:
        if max_rate_hz <= 0:
            raise ValueError("max_rate_hz must be positive")
        self.feed = feed
        self.network = network
        self.min_interval = 1.0 / max_rate_hz
        self.status_interval = status_interval
        self.published = 0
        self.coalesced = 0
        self.errors = 0
        self._latest: TickerSnapshot | None = None
        self._samples: deque[tuple[datetime, Decimal, Decimal, Decimal]] = deque()
        self._history = history
        self._guard = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._unsubscribe: Callable[[], None] | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Subscribe to the feed and start the publishing thread (idempotent)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._unsubscribe = self.feed.subscribe(self._on_tick)
        self._thread = threading.Thread(target=self._run, name=f"market-publisher-{self.network}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Unsubscribe and join the thread."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _on_tick(self, snapshot: TickerSnapshot) -> None:
        """Feed-thread callback: keep the newest snapshot and wake the publisher (never blocks)."""
        with self._guard:
            if self._latest is not None:
                self.coalesced += 1
            self._latest = snapshot
        self._wake.set()

    def seed_window(self) -> int:
        """Start the 24 h window from ``history`` (the exchange's minute candles), once; the number of buckets. A
        failed read leaves the window to the ticks (it then says "since" when it starts)."""
        if self._history is None:
            return 0
        history, self._history = self._history, None
        try:
            buckets = history()
        except Exception:
            logger.warning("market publisher %s: no 24 h history, the window starts now", self.network, exc_info=True)
            return 0
        self._samples.extend(sorted(buckets))
        return len(buckets)

    def _run(self) -> None:
        self.seed_window()
        last_sent = 0.0
        while not self._stop.is_set():
            self._wake.wait(timeout=self.status_interval)
            self._wake.clear()
            if self._stop.is_set():
                break
            wait = self.min_interval - (time.monotonic() - last_sent)
            if wait > 0 and self._stop.wait(wait):
                break
            with self._guard:
                snapshot, self._latest = self._latest, None
            # The rate bound counts from the start of each publish: counting from its end would add the publish
            # time to every interval, so a feed ticking at exactly the bound would lag further behind each tick.
            last_sent = time.monotonic()
            try:
                if snapshot is not None:
                    self.publish_tick(snapshot)
                else:
                    self.publish_status()
            except Exception:
                self.errors += 1
                logger.exception("market publisher failed on %s", self.network)

    def _stats(self, now: datetime, last: Decimal | None) -> tuple[str | None, str | None, str | None, str | None]:
        """24 h high, low, change % and window start. One bucket per minute (start, first, high, low) keeps every
        tick's extremes, not just one sample a minute, in bounded memory (1,440 buckets)."""
        if last is not None:
            if self._samples and now - self._samples[-1][0] < SAMPLE_EVERY:
                start, first, high, low = self._samples[-1]
                self._samples[-1] = (start, first, max(high, last), min(low, last))
            else:
                self._samples.append((now, last, last, last))
        while self._samples and now - self._samples[0][0] > WINDOW:
            self._samples.popleft()
        if not self._samples:
            return None, None, None, None
        first = self._samples[0][1]
        current = last if last is not None else self._samples[-1][1]
        change = (current - first) * 100 / first if first else Decimal(0)
        high = max(b[2] for b in self._samples)
        low = min(b[3] for b in self._samples)
        return str(high), str(low), f"{change:.2f}", self._samples[0][0].isoformat()

    def build(self, snapshot: TickerSnapshot, state: MarketStatus) -> MarketData:
        """The ``MarketData`` of ``snapshot`` (also advances the 24 h window)."""
        now = timezone.now()
        high, low, change, start = self._stats(now, snapshot.last_price)

        def s(v: Decimal | None) -> str | None:
            return None if v is None else str(v)

        data: MarketData = {
            "network": self.network,
            "last": s(snapshot.last_price),
            "index": s(snapshot.index),
            "bid": s(snapshot.bid),
            "ask": s(snapshot.ask),
            "high_24h": high,
            "low_24h": low,
            "change_24h_pct": change,
            "window_start": start,
            "exchange_time": snapshot.exchange_time.isoformat(),
            "received_at": snapshot.received_at.isoformat(),
            "age_ms": 0,
            "source": snapshot.source,
            "state": state,
            "stale_after_ms": int(FRESHNESS_LIMIT_S * 1000),
        }
        return with_age(data, now)

    def publish_tick(self, snapshot: TickerSnapshot) -> MarketData:
        """Store and send one tick (``market.tick``) to ``market.<network>``."""
        data = self.build(snapshot, self.feed.state)
        store_market_state(data)
        group_send(market_group(self.network), {"type": "market.tick", "market": data})
        count_tick(self.network)
        self.published += 1
        return data

    def publish_status(self) -> MarketData:
        """Send the current state without a new price (``market.status``): turns pages stale when the feed dies."""
        data = market_state(self.network)
        if data["received_at"] is not None and data["state"] != "stale":
            data["state"] = self.feed.state
        if data["state"] != "stale" and data["received_at"] is not None:
            store_market_state(data)
        group_send(market_group(self.network), {"type": "market.status", "market": data})
        return data
