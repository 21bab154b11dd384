"""Events the Exchange emits to its listeners (the Stream hub); plain data, no I/O."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TradeEvent:
    """A private isolated-trade event (§7.1): ``event`` ∈ open, filled, closed, stoploss, takeprofit, liquidation,
    canceled, funding."""

    account_id: str
    event: str
    trade: dict[str, object]


@dataclass(frozen=True)
class TickEvent:
    """Prices moved (ticker, lastPrice, index and buckets topics)."""


@dataclass(frozen=True)
class FundingEvent:
    """A funding settlement happened (public funding topic)."""

    settlement: dict[str, object]


Event = TradeEvent | TickEvent | FundingEvent
Listener = Callable[[Event], None]
