"""Price sources (seeded random walk, candle CSV replay), the size-bucket ladder and the candle book."""

from __future__ import annotations

import csv
import math
import random
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from lnmarkets.maths import TICK, round_to_tick
from lnmarkets.simulator.config import BucketSpec

SECONDS_PER_YEAR = 31_536_000
RESOLUTIONS: dict[str, int] = {
    "1m": 60,
    "3m": 180,
    "5m": 300,
    "10m": 600,
    "15m": 900,
    "30m": 1800,
    "45m": 2700,
    "1h": 3600,
    "2h": 7200,
    "3h": 10800,
    "4h": 14400,
    "1d": 86400,
    "1w": 604800,
    "1month": 30 * 86400,
    "3months": 90 * 86400,
}
MAX_MINUTES = 20_000


@dataclass(frozen=True)
class Quote:
    """Bid/ask of one size bucket."""

    min_size: int
    max_size: int
    bid: Decimal
    ask: Decimal

    def as_json(self) -> dict[str, object]:
        return {"minSize": self.min_size, "maxSize": self.max_size, "bidPrice": self.bid, "askPrice": self.ask}


def make_quotes(last: Decimal, specs: tuple[BucketSpec, ...]) -> tuple[Quote, ...]:
    """The ladder around ``last``: each bucket quotes ``last ∓ half_spread_ticks × 0.5`` (bid never below 0.5)."""
    quotes = []
    for spec in specs:
        half = TICK * spec.half_spread_ticks
        quotes.append(Quote(spec.min_size, spec.max_size, max(last - half, TICK), last + half))
    return tuple(quotes)


def quote_for(quotes: tuple[Quote, ...], quantity: int) -> Quote:
    """The bucket holding ``quantity`` (the last bucket for anything larger)."""
    for quote in quotes:
        if quantity <= quote.max_size:
            return quote
    return quotes[-1]


class RandomWalk:
    """Geometric random walk with ``annual_volatility`` per year, one step per tick of ``tick_interval`` seconds.

    The normal draw is a float from a seeded generator (randomness, not money); it is turned into a ``Decimal`` and
    the new price is rounded to the 0.5 tick.
    """

    def __init__(self, seed: int | None, annual_volatility: Decimal, tick_interval: float) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - a price walk, not cryptography
        dt = max(tick_interval, 0.001)
        self.sigma = float(annual_volatility) * math.sqrt(dt / SECONDS_PER_YEAR)

    def next_price(self, last: Decimal) -> Decimal:
        step = Decimal(repr(self.rng.gauss(0.0, self.sigma)))
        return max(round_to_tick(last * (1 + step)), TICK)

    def next_index(self, last: Decimal, spread: Decimal) -> Decimal:
        """The index: the last price plus a small seeded deviation (a fraction ``spread`` of it, 1σ)."""
        noise = Decimal(repr(self.rng.gauss(0.0, 1.0))) * spread
        return max(round_to_tick(last * (1 + noise)), TICK)


@dataclass(frozen=True)
class CandleRow:
    time: str
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


def load_candles(path: str | Path) -> list[CandleRow]:
    """Read a CSV with the columns ``time,open,high,low,close,volume`` (header required)."""
    rows: list[CandleRow] = []
    with Path(path).open(newline="", encoding="utf-8") as handle:
        for record in csv.DictReader(handle):
            rows.append(
                CandleRow(
                    time=record["time"],
                    open=Decimal(record["open"]),
                    high=Decimal(record["high"]),
                    low=Decimal(record["low"]),
                    close=Decimal(record["close"]),
                    volume=Decimal(record.get("volume") or "0"),
                )
            )
    if not rows:
        raise ValueError(f"no candles in {path}")
    return rows


class CandleReplay:
    """Replays candles, four ticks each: open, then the extreme nearer to the direction's start, the other, close.

    When the file is exhausted the price holds at the last close.
    """

    def __init__(self, rows: list[CandleRow]) -> None:
        self.prices: list[Decimal] = []
        for row in rows:
            middle = (row.high, row.low) if row.close < row.open else (row.low, row.high)
            for price in (row.open, *middle, row.close):
                self.prices.append(max(round_to_tick(price), TICK))
        self.position = 0

    def next_price(self, last: Decimal) -> Decimal:
        if self.position >= len(self.prices):
            return last
        price = self.prices[self.position]
        self.position += 1
        return price


class CandleBook:
    """1-minute OHLCV candles recorded from the ticks, aggregated on demand to any resolution."""

    def __init__(self) -> None:
        self.minutes: OrderedDict[int, list[Decimal]] = OrderedDict()

    def record(self, moment: datetime, price: Decimal, volume: int = 0) -> None:
        minute = int(moment.timestamp()) // 60 * 60
        candle = self.minutes.get(minute)
        if candle is None:
            self.minutes[minute] = [price, price, price, price, Decimal(volume)]
            while len(self.minutes) > MAX_MINUTES:
                self.minutes.popitem(last=False)
            return
        candle[1] = max(candle[1], price)
        candle[2] = min(candle[2], price)
        candle[3] = price
        candle[4] += volume

    def backfill(
        self, end: datetime, price: Decimal, minutes: int, annual_volatility: Decimal, seed: int | None
    ) -> None:
        """Make up ``minutes`` of 1-minute candles before ``end``'s minute, a seeded geometric walk (10 s steps) that
        closes at ``price``: the walk is drawn forward from 1, then scaled so that its last close is ``price``."""
        minutes = min(minutes, MAX_MINUTES - 1)
        rng = random.Random(seed)  # noqa: S311 - a made-up price history, not cryptography
        sigma = float(annual_volatility) * math.sqrt(10 / SECONDS_PER_YEAR)
        level = 1.0
        rows: list[tuple[float, float, float, float, int]] = []
        for _ in range(minutes):
            first = high = low = level
            for _step in range(6):
                level *= math.exp(rng.gauss(0.0, sigma))
                high, low = max(high, level), min(low, level)
            rows.append((first, high, low, level, int(rng.expovariate(1 / 2000))))
        scale = price / Decimal(repr(level))
        start = int(end.timestamp()) // 60 * 60 - minutes * 60

        def p(value: float) -> Decimal:
            return max(round_to_tick(Decimal(repr(value)) * scale), TICK)

        for index, (o, h, low_, c, volume) in enumerate(rows):
            self.minutes[start + index * 60] = [p(o), p(h), p(low_), p(c), Decimal(volume)]
        if rows:
            self.minutes[start + (minutes - 1) * 60][3] = price  # exact, whatever the rounding

    def dump(self) -> list[list[object]]:
        """The 1-minute candles as ``[minute, open, high, low, close, volume]`` rows (the state file)."""
        return [[minute, *(str(v) for v in values)] for minute, values in self.minutes.items()]

    def load(self, rows: list[list[object]]) -> None:
        """Replace the candles with ``dump()``'s rows."""
        self.minutes = OrderedDict(
            (int(str(row[0])), [Decimal(str(v)) for v in row[1:6]]) for row in rows[-MAX_MINUTES:]
        )

    def add_volume(self, moment: datetime, price: Decimal, volume: int) -> None:
        """Count ``volume`` USD traded in the current minute without moving its close."""
        candle = self.minutes.get(int(moment.timestamp()) // 60 * 60)
        if candle is None:
            self.record(moment, price, volume)
        else:
            candle[4] += volume

    def candles(self, resolution: str) -> list[dict[str, object]]:
        """All candles at ``resolution``, newest first."""
        seconds = RESOLUTIONS[resolution]
        grouped: dict[int, list[Decimal]] = {}
        for minute, (o, h, low, c, v) in self.minutes.items():
            start = minute // seconds * seconds
            agg = grouped.get(start)
            if agg is None:
                grouped[start] = [o, h, low, c, v]
            else:
                agg[1] = max(agg[1], h)
                agg[2] = min(agg[2], low)
                agg[3] = c
                agg[4] += v
        out = []
        for start in sorted(grouped, reverse=True):
            o, h, low, c, v = grouped[start]
            out.append(
                {
                    "time": datetime.fromtimestamp(start, UTC),
                    "open": o,
                    "high": h,
                    "low": low,
                    "close": c,
                    "volume": v,
                }
            )
        return out
