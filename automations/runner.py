"""Act on the tick: evaluate every active automation of a network as soon as the market feed has a new ticker.

The feed's callback only stores the latest ticker and wakes this runner's thread, so a slow evaluation never
blocks the feed; ticks that arrive while an evaluation runs are coalesced (the newest one is evaluated next). An
outlier tick is held until the next tick confirms it (``automations.outliers``, T13).
Started by ``manage.py run_automations`` in production and by the embedded default in its own process.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import close_old_connections
from django.utils import timezone

from automations.outliers import OutlierGate
from automations.services.evaluation import automations_evaluate_network, market_from_ticker
from lnmarkets.feed import MarketFeed, TickerSnapshot

logger = logging.getLogger(__name__)


class TickRunner:
    """Evaluate the automations of ``network`` on each new ticker of ``feed`` (in one background thread)."""

    def __init__(self, feed: MarketFeed, network: str) -> None:
        self.feed = feed
        self.network = network
        self.evaluations = 0
        self.errors = 0
        self.gate = OutlierGate()
        self._latest: TickerSnapshot | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._guard = threading.Lock()
        self._unsubscribe: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._run, name=f"tick-runner-{network}", daemon=True)

    def start(self) -> None:
        # What the process holds after its start-up (Django, the apps) stays out of the cyclic collector's scans:
        # a full collection over that heap held a tick for 100 ms and more (bench/automations.py, issue #14).
        gc.freeze()
        self._unsubscribe = self.feed.subscribe(self._on_tick)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)

    def _on_tick(self, snapshot: TickerSnapshot) -> None:
        with self._guard:
            self._latest = snapshot
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=1.0)
            self._wake.clear()
            with self._guard:
                snapshot, self._latest = self._latest, None
            if snapshot is None or self._stop.is_set():
                continue
            self.evaluate(snapshot)

    def evaluate(self, snapshot: TickerSnapshot) -> list[int]:
        """Evaluate once on ``snapshot``; the one error boundary of this thread (logged, counted, moved on)."""
        market = market_from_ticker(snapshot)
        if market is None:
            return []
        if not self.gate.admit(market.last_price, market.index, market.time):
            logger.info("outlier tick %s on %s held until a second tick confirms it", market.last_price, self.network)
            return []
        close_old_connections()
        with _collector_paused():
            try:
                created = automations_evaluate_network(network=self.network, market=market, now=timezone.now())
            except Exception:
                self.errors += 1
                logger.exception("tick evaluation failed on %s", self.network)
                return []
            finally:
                self.evaluations += 1
        return created


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a tick is evaluated and its orders queued: it runs once they are out.
    (Reference counting frees everything else as usual; a tick allocates tens of thousands of short-lived rows.)"""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
