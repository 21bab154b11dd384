"""Process-wide market feed: the public Stream ticker with an HTTP fallback (docs/reliability.md §6
"Price freshness", T11, T12; docs/protocol.md §4.3, §7.1).

One ``MarketFeed`` per network per process (``get_market_feed``) runs in a daemon thread with its own asyncio loop:

* a ``StreamClient`` subscribed to the public ``ticker`` and ``buckets`` topics (no credentials);
* a fallback loop that, while the stream is down or stale for more than ``stale_after`` (5 s), polls
  ``GET /v3/futures/ticker`` every ``poll_interval`` (≥ 1 s, and through the shared public rate-limit bucket), and
  stops polling as soon as fresh stream ticks are back.

Freshness is measured on our monotonic clock, and a tick only counts as fresh when the exchange's own ``time``
advanced (so a feed that repeats a frozen ticker — T12 — goes stale instead of looking live):

* ``live``: a fresh stream tick within ``stale_after``;
* ``fallback``: not live, and a fresh HTTP ticker, newer than the last fresh stream tick, within
  ``max(stale_after, 2 × poll_interval)``;
* ``stale``: neither (no data yet, exchange unreachable, or its clock is frozen). Block entries on ``stale``.

Subscribers (``subscribe``) are called in the feed thread with each new ``TickerSnapshot``; they must return quickly
(hand the value to a queue, a channel layer or an event) and never block on the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from lnmarkets.client import RestClient
from lnmarkets.exceptions import LNMarketsError
from lnmarkets.networks import network_urls
from lnmarkets.ratelimit import RateLimiter
from lnmarkets.schemas import (
    TOPIC_BUCKETS,
    TOPIC_TICKER,
    PriceBucket,
    StreamBuckets,
    StreamEvent,
    StreamTicker,
    Ticker,
)
from lnmarkets.stream import StreamClient, StreamState
from lnmarkets.subscribers import Subscribers

logger = logging.getLogger(__name__)

FeedState = Literal["live", "fallback", "stale"]
TickerSource = Literal["stream", "http"]
TickerCallback = Callable[["TickerSnapshot"], None]


@dataclass(frozen=True, slots=True)
class TickerSnapshot:
    """The latest market data. ``bid``/``ask`` are the quotes of the smallest size bucket (§9.8)."""

    last_price: Decimal | None
    index: Decimal | None
    bid: Decimal | None
    ask: Decimal | None
    buckets: tuple[PriceBucket, ...]
    funding_rate: Decimal | None
    exchange_time: datetime
    received_at: datetime
    received_monotonic: float
    source: TickerSource


def _best(buckets: tuple[PriceBucket, ...]) -> tuple[Decimal | None, Decimal | None]:
    if not buckets:
        return None, None
    first = min(buckets, key=lambda b: b.min_size)
    return first.bid_price, first.ask_price


class MarketFeed:
    """Stream-first ticker with HTTP fallback; see the module docstring. Thread-safe readers."""

    def __init__(
        self,
        rest_url: str,
        stream_url: str,
        *,
        stale_after: float = 5.0,
        poll_interval: float = 1.0,
        heartbeat_interval: float = 5.0,
        silence_timeout: float = 10.0,
        request_timeout: float = 10.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        http_timeout: float = 5.0,
        rate_limiter: RateLimiter | None = None,
        rest_client: RestClient | None = None,
        name: str = "market-feed",
    ) -> None:
        if poll_interval < 1.0:
            raise ValueError("poll_interval must be >= 1 s (the public budget is 1 request/s)")
        self.stale_after = stale_after
        self.poll_interval = poll_interval
        self.name = name
        self._rest = rest_client or RestClient(rest_url, timeout=http_timeout, rate_limiter=rate_limiter, max_retries=0)
        self.stream = StreamClient(
            stream_url,
            None,
            (TOPIC_TICKER, TOPIC_BUCKETS),
            self._on_stream_event,
            heartbeat_interval=heartbeat_interval,
            silence_timeout=silence_timeout,
            request_timeout=request_timeout,
            backoff_initial=backoff_initial,
            backoff_max=backoff_max,
        )
        self._lock = threading.Lock()
        self._snapshot: TickerSnapshot | None = None
        self._stream_time: datetime | None = None
        self._http_time: datetime | None = None
        self._stream_fresh_at: float | None = None
        self._http_fresh_at: float | None = None
        self._subscribers: Subscribers[TickerSnapshot] = Subscribers(logger)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._started = threading.Event()
        self.polls = 0
        self.poll_errors = 0

    # --- public API ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._started.clear()
        self._thread = threading.Thread(target=self._thread_main, name=self.name, daemon=True)
        self._thread.start()
        self._started.wait(timeout=5.0)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the stream and the fallback loop and join the thread."""
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
                loop.call_soon_threadsafe(event.set)
                loop.call_soon_threadsafe(self.stream.stop)
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def latest(self) -> TickerSnapshot | None:
        """The newest snapshot from either source, or ``None`` before the first one."""
        with self._lock:
            return self._snapshot

    def age(self) -> float | None:
        """Seconds since the newest snapshot was received (our clock), or ``None``."""
        snapshot = self.latest()
        return None if snapshot is None else time.monotonic() - snapshot.received_monotonic

    @property
    def state(self) -> FeedState:
        """``live`` / ``fallback`` / ``stale`` (module docstring)."""
        now = time.monotonic()
        with self._lock:
            if self._stream_fresh_at is not None and now - self._stream_fresh_at <= self.stale_after:
                return "live"
            window = max(self.stale_after, 2 * self.poll_interval)
            http_at, stream_at = self._http_fresh_at, self._stream_fresh_at
            if http_at is not None and now - http_at <= window and (stream_at is None or http_at > stream_at):
                return "fallback"
        return "stale"

    @property
    def stream_state(self) -> StreamState:
        """The underlying stream connection's state."""
        return self.stream.state

    def subscribe(self, callback: TickerCallback) -> Callable[[], None]:
        """Call ``callback(snapshot)`` on every new snapshot (in the feed thread); returns the unsubscribe function."""
        return self._subscribers.add(callback)

    # --- updates ------------------------------------------------------------------------------------------------

    def _publish(self, snapshot: TickerSnapshot) -> None:
        with self._lock:
            self._snapshot = snapshot
        self._subscribers.notify(snapshot, "market feed subscriber")

    def _on_stream_event(self, event: StreamEvent) -> None:
        now = time.monotonic()
        previous = self.latest()
        received = datetime.now(UTC)
        if isinstance(event, StreamTicker):
            with self._lock:
                if self._stream_time is None or event.time > self._stream_time:
                    self._stream_fresh_at = now
                self._stream_time = max(event.time, self._stream_time or event.time)
            buckets = previous.buckets if previous else ()
            bid, ask = _best(buckets)
            snapshot = TickerSnapshot(
                last_price=event.last_price if event.last_price is not None else _prev(previous, "last_price"),
                index=event.index if event.index is not None else _prev(previous, "index"),
                bid=bid,
                ask=ask,
                buckets=buckets,
                funding_rate=event.funding.rate if event.funding else _prev(previous, "funding_rate"),
                exchange_time=event.time,
                received_at=received,
                received_monotonic=now,
                source="stream",
            )
            self._publish(snapshot)
        elif isinstance(event, StreamBuckets) and previous is not None:
            bid, ask = _best(event.buckets)
            self._publish(
                replace(previous, buckets=event.buckets, bid=bid, ask=ask, received_at=received, received_monotonic=now)
            )

    def _on_http_ticker(self, ticker: Ticker) -> None:
        now = time.monotonic()
        with self._lock:
            advanced = self._http_time is None or ticker.time > self._http_time
            if advanced:
                self._http_fresh_at = now
            self._http_time = max(ticker.time, self._http_time or ticker.time)
        previous = self.latest()
        if not advanced and previous is not None and previous.source == "http":
            return
        bid, ask = _best(ticker.prices)
        self._publish(
            TickerSnapshot(
                last_price=ticker.last_price,
                index=ticker.index,
                bid=bid,
                ask=ask,
                buckets=ticker.prices,
                funding_rate=ticker.funding_rate,
                exchange_time=ticker.time,
                received_at=datetime.now(UTC),
                received_monotonic=now,
                source="http",
            )
        )

    # --- background thread --------------------------------------------------------------------------------------

    def _thread_main(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self._started.set()
        stream_task = asyncio.create_task(self._run_stream())
        fallback_task = asyncio.create_task(self._fallback_loop())
        await self._stop_event.wait()
        self.stream.stop()
        for task in (stream_task, fallback_task):
            task.cancel()
        await asyncio.gather(stream_task, fallback_task, return_exceptions=True)
        self._rest.close()

    async def _run_stream(self) -> None:
        try:
            await self.stream.run()
        except LNMarketsError:
            logger.exception("market feed stream stopped; HTTP fallback only")

    def _stream_fresh(self, now: float) -> float | None:
        """Seconds left before the stream counts as stale, or ``None`` when it already does."""
        with self._lock:
            fresh_at = self._stream_fresh_at
        if fresh_at is None or now - fresh_at > self.stale_after:
            return None
        return self.stale_after - (now - fresh_at)

    async def _fallback_loop(self) -> None:
        while True:
            left = self._stream_fresh(time.monotonic())
            if left is not None:
                await asyncio.sleep(min(left + 0.01, 0.5))
                continue
            started = time.monotonic()
            self.polls += 1
            try:
                ticker = await asyncio.to_thread(self._rest.futures_ticker_get)
            except LNMarketsError as exc:
                self.poll_errors += 1
                logger.warning("ticker fallback poll failed: %s", exc)
            else:
                self._on_http_ticker(ticker)
            await asyncio.sleep(max(self.poll_interval - (time.monotonic() - started), 0.0))


def _prev(snapshot: TickerSnapshot | None, field: str) -> Decimal | None:
    if snapshot is None:
        return None
    value = getattr(snapshot, field)
    return value if isinstance(value, Decimal) else None


_feeds: dict[str, tuple[int, MarketFeed]] = {}
_feeds_lock = threading.Lock()


def get_market_feed(network: str = "simulator") -> MarketFeed:
    """The started, process-wide ``MarketFeed`` of ``network`` (URLs from ``settings.LNMARKETS_URLS``); one per
    network per process (a forked child gets its own)."""
    with _feeds_lock:
        entry = _feeds.get(network)
        if entry is not None and entry[0] == os.getpid():
            return entry[1]
        urls = network_urls(network)
        feed = MarketFeed(urls.rest, urls.stream, name=f"market-feed-{network}")
        feed.start()
        _feeds[network] = (os.getpid(), feed)
        return feed


def stop_market_feeds() -> None:
    """Stop every process-wide feed (shutdown hooks, tests)."""
    with _feeds_lock:
        entries = list(_feeds.values())
        _feeds.clear()
    for pid, feed in entries:
        if pid == os.getpid():
            feed.stop()
