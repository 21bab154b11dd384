"""ASGI app for the browser test: ``config.asgi.application`` plus a scripted market feed.

The fake feed ticks every 0.2 s while the file named by ``BROWSER_TEST_TICK_FLAG`` exists (and reports ``stale``
when it does not); a real ``MarketPublisher`` fans the ticks out through the in-memory channel layer, from its own
thread, exactly as in the embedded default.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

from config.asgi import application
from lnmarkets.feed import TickerSnapshot
from realtime.market import MarketPublisher, MarketStatus

FLAG = os.environ.get("BROWSER_TEST_TICK_FLAG", "")


class ScriptedFeed:
    def __init__(self) -> None:
        self.callbacks: list[Callable[[TickerSnapshot], None]] = []
        self.price = Decimal("100000.0")

    @property
    def state(self) -> MarketStatus:
        return "live" if FLAG and os.path.exists(FLAG) else "stale"

    def subscribe(self, callback: Callable[[TickerSnapshot], None]) -> Callable[[], None]:
        self.callbacks.append(callback)
        return lambda: self.callbacks.remove(callback)

    def run(self) -> None:
        step = 0
        while True:
            time.sleep(0.2)
            if self.state != "live":
                continue
            step += 1
            self.price += Decimal("0.5") if step % 3 else Decimal("-0.5")
            now = datetime.now(UTC)
            snapshot = TickerSnapshot(
                last_price=self.price,
                index=self.price,
                bid=self.price,
                ask=self.price + Decimal("0.5"),
                buckets=(),
                funding_rate=None,
                exchange_time=now,
                received_at=now,
                received_monotonic=time.monotonic(),
                source="stream",
            )
            for callback in list(self.callbacks):
                callback(snapshot)


feed = ScriptedFeed()
publisher = MarketPublisher(feed, "simulator", max_rate_hz=2, status_interval=1.0)
publisher.start()
threading.Thread(target=feed.run, name="scripted-feed", daemon=True).start()

__all__ = ["application"]
