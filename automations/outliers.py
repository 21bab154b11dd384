"""Outlier ticks wait for confirmation before any automation acts on them (docs/reliability.md §6.2, T13).

A tick is an outlier when its last price is more than ``INDEX_PCT`` from the exchange's own index, or more than
``JUMP_PCT`` from the previous accepted tick less than ``JUMP_WINDOW`` earlier. An outlier is held, not acted on;
the next tick confirms it when it is itself within ``CONFIRM_PCT`` of the held one (a genuine move stays there),
and is judged afresh otherwise (a spike that came back is simply a normal tick again). So one bad print never
closes a trade or opens one, and a real move is acted on at its second tick.

Pure: no clock (each tick carries the exchange's time), no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

INDEX_PCT = Decimal(2)
JUMP_PCT = Decimal(3)
# docs/reliability.md proposes 1 s; tickers arrive about once a second, so 1 s would let most jumps through unchecked.
JUMP_WINDOW = timedelta(seconds=5)
CONFIRM_PCT = Decimal(1)


def _apart_pct(a: Decimal, b: Decimal) -> Decimal:
    return abs(a - b) / b * 100


@dataclass
class OutlierGate:
    """Decides, tick by tick, whether the automations may act on it (``admit``)."""

    last_price: Decimal | None = None
    last_time: datetime | None = None
    held_price: Decimal | None = None
    held: int = 0

    def is_outlier(self, price: Decimal, index: Decimal | None, at: datetime) -> bool:
        if index is not None and index > 0 and _apart_pct(price, index) > INDEX_PCT:
            return True
        if self.last_price is None or self.last_time is None:
            return False
        recent = at - self.last_time <= JUMP_WINDOW
        return recent and _apart_pct(price, self.last_price) > JUMP_PCT

    def admit(self, price: Decimal, index: Decimal | None, at: datetime) -> bool:
        """True when the automations may act on this tick; an unconfirmed outlier is held (False)."""
        confirmed = self.held_price is not None and _apart_pct(price, self.held_price) <= CONFIRM_PCT
        if not confirmed and self.is_outlier(price, index, at):
            self.held_price = price
            self.held += 1
            return False
        self.held_price = None
        self.last_price, self.last_time = price, at
        return True
