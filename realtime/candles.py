"""Candles for the dashboard chart, from the exchange's OHLC endpoint (``GET /v3/futures/candles``), cached briefly
per network and resolution so that many open dashboards cost one public request; and the true 24 h window the
market publisher starts from."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypedDict

from django.core.cache import cache
from django.utils import timezone

from automations.exchange import public_client
from lnmarkets.exceptions import LNMarketsError
from lnmarkets.schemas import Candle

logger = logging.getLogger(__name__)

CHART_RANGES: dict[str, int] = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}
PAGE = 1000  # the exchange's largest page
CACHE_S = {"1m": 10, "5m": 30, "1h": 60, "1d": 300}


class CandleData(TypedDict):
    time: int  # epoch seconds, start of the candle (UTC)
    open: str
    high: str
    low: str
    close: str


def _json(candle: Candle) -> CandleData:
    return {
        "time": int(candle.time.timestamp()),
        "open": str(candle.open),
        "high": str(candle.high),
        "low": str(candle.low),
        "close": str(candle.close),
    }


def chart_candles(network: str, resolution: str) -> list[CandleData] | None:
    """Up to 1,000 candles of ``resolution`` (one of ``CHART_RANGES``), oldest first; ``None`` when the exchange
    did not answer (the chart says so and tries again)."""
    if resolution not in CHART_RANGES:
        raise ValueError(f"unknown resolution {resolution!r}")
    key = f"axisor:candles:{network}:{resolution}"
    cached: list[CandleData] | None = cache.get(key)
    if cached is not None:
        return cached
    try:
        page = public_client(network).futures_candles_list(range=resolution, limit=PAGE)
    except LNMarketsError as exc:
        logger.info("candles %s %s unavailable: %s", network, resolution, type(exc).__name__)
        return None
    candles = sorted((_json(c) for c in page.data), key=lambda c: c["time"])
    cache.set(key, candles, CACHE_S[resolution])
    return candles


Bucket = tuple[datetime, Decimal, Decimal, Decimal]


def day_window(network: str, now: datetime | None = None) -> list[Bucket]:
    """The last 24 h as one-minute ``(start, open, high, low)`` buckets, oldest first, from the exchange's 1-minute
    candles (two pages): what the market publisher's 24 h high, low and change start from. Raises the gateway's
    errors."""
    now = now or timezone.now()
    since = now - timedelta(hours=24)
    client = public_client(network)
    buckets: list[Bucket] = []
    cursor: str | None = None
    for _ in range(3):
        page = client.futures_candles_list(from_=since, range="1m", limit=PAGE, cursor=cursor)
        buckets.extend((c.time, c.open, c.high, c.low) for c in page.data if c.time >= since)
        cursor = page.next_cursor
        if not cursor:
            break
    return sorted(buckets)
