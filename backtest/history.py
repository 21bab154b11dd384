"""Price history for the replay: candles or ticks, prices in integer half-ticks, times in integer milliseconds.

Pure: no Django, no clock, no network. A :class:`History` holds parallel compact arrays (``array('q')``) so a year of
1-minute candles (525,600 rows) costs about 21 MB and is scanned quickly. Prices are LN Markets prices on the 0.5 USD
tick, stored as ``price × 2`` (an ``int``); ``Decimal(value) / 2`` turns one back into a price.

Sources: :func:`parse_csv` (an uploaded or local CSV of candles or ticks), :func:`from_candles` (the exchange's OHLC
candles, as the client returns them) and ``backtest.scenarios`` (deterministic stress scenarios).
"""

from __future__ import annotations

import csv
import io
import zlib
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Literal

HistoryKind = Literal["candles", "ticks"]

MAX_ROWS = 1_100_000  # two years of 1-minute candles
MIN_PRICE = Decimal(10)
MAX_PRICE = Decimal(10_000_000)
_TWO = Decimal(2)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAGIC = b"AXBT1"


class HistoryError(ValueError):
    """A history that cannot be replayed; ``str(error)`` is a message fit for a user (with the CSV line if any)."""


def to_half_ticks(price: Decimal) -> int:
    """A USD price as an integer number of half-dollars, rounded to the nearest 0.5 tick."""
    return int((price * _TWO).to_integral_value(rounding=ROUND_HALF_UP))


def price_of(half_ticks: int) -> Decimal:
    """Inverse of :func:`to_half_ticks`: the USD price (one decimal, on the tick)."""
    return (Decimal(half_ticks) / _TWO).quantize(Decimal("0.1"))


def ms_of(moment: datetime) -> int:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise HistoryError("Times must be timezone-aware.")
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def datetime_of(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass(frozen=True, slots=True)
class History:
    """Rows of ``(time, open, high, low, close)``; for ticks the four prices are equal and ``span_ms`` is 0.

    ``span_ms`` is the candle length (every candle covers ``[time, time + span_ms)``).
    """

    kind: HistoryKind
    span_ms: int
    times: array[int]
    opens: array[int]
    highs: array[int]
    lows: array[int]
    closes: array[int]

    def __len__(self) -> int:
        return len(self.times)

    @property
    def start_ms(self) -> int:
        return self.times[0]

    @property
    def end_ms(self) -> int:
        return self.times[-1] + (self.span_ms * 3 // 4 if self.kind == "candles" else 0)

    def first_price(self) -> int:
        return self.opens[0]

    def last_price(self) -> int:
        return self.closes[-1]


def build(kind: HistoryKind, span_ms: int, rows: Iterable[tuple[int, int, int, int, int]]) -> History:
    """A validated history from ``(time_ms, open, high, low, close)`` rows in half-ticks (sorted by time)."""
    times, opens, highs, lows, closes = (array("q") for _ in range(5))
    low_limit, high_limit = to_half_ticks(MIN_PRICE), to_half_ticks(MAX_PRICE)
    previous = None
    for number, (t, o, h, low, c) in enumerate(rows, start=1):
        if number > MAX_ROWS:
            raise HistoryError(f"Too many rows: at most {MAX_ROWS:,} candles or ticks per backtest.")
        if previous is not None and t <= previous:
            raise HistoryError(f"Row {number}: times must strictly increase (got {datetime_of(t).isoformat()}).")
        if not (low <= min(o, c) and h >= max(o, c)):
            raise HistoryError(f"Row {number}: the high must be ≥ open and close, the low ≤ open and close.")
        if low < low_limit or h > high_limit:
            raise HistoryError(f"Row {number}: prices must be between {MIN_PRICE} and {MAX_PRICE:,} USD.")
        previous = t
        times.append(t)
        opens.append(o)
        highs.append(h)
        lows.append(low)
        closes.append(c)
    if not times:
        raise HistoryError("The history is empty.")
    if kind == "candles":
        if span_ms <= 0:
            raise HistoryError("Candles need a positive length.")
        for number in range(1, len(times)):
            if times[number] - times[number - 1] < span_ms:
                raise HistoryError(f"Row {number + 1}: candles overlap (they are {span_ms // 1000} s long).")
    return History(kind, span_ms if kind == "candles" else 0, times, opens, highs, lows, closes)


# --- CSV -------------------------------------------------------------------------------------------------------------


def _parse_time(text: str) -> int:
    """ISO 8601 (a naive time is UTC), or a Unix time in seconds or milliseconds."""
    value = text.strip()
    if not value:
        raise ValueError("empty time")
    if value.lstrip("-").replace(".", "", 1).isdigit():
        number = Decimal(value)
        return int(number if number > 10_000_000_000 else number * 1000)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return ms_of(moment)


def _parse_price(text: str, name: str) -> int:
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise ValueError(f"{name} is not a number") from exc
    if not value.is_finite() or value <= 0:
        raise ValueError(f"{name} must be a positive number")
    return to_half_ticks(value)


def _infer_span(times: Sequence[int]) -> int:
    """The most common gap between consecutive candles (their length); 60 s for a single candle."""
    if len(times) < 2:
        return 60_000
    counts: dict[int, int] = {}
    for i in range(1, min(len(times), 5000)):
        gap = times[i] - times[i - 1]
        counts[gap] = counts.get(gap, 0) + 1
    return max(counts, key=lambda gap: (counts[gap], -gap))


def parse_csv(data: bytes | str, kind: HistoryKind) -> History:
    """Candles (header ``time,open,high,low,close[,volume]``) or ticks (header ``time,price``) from CSV text.

    Times are ISO 8601 or Unix seconds/milliseconds, ascending; prices are rounded to the 0.5 tick. Raises
    :class:`HistoryError` naming the line of the first problem.
    """
    try:
        text = data.decode("utf-8-sig", errors="strict") if isinstance(data, bytes) else data
    except UnicodeDecodeError:
        raise HistoryError("The file is not UTF-8 text: export it as CSV (comma-separated values).") from None
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    needed = ("time", "open", "high", "low", "close") if kind == "candles" else ("time", "price")
    missing = [name for name in needed if name not in header]
    if missing:
        raise HistoryError(
            f"Line 1: the header must name the columns {', '.join(needed)} (missing {', '.join(missing)})."
        )
    index = [header.index(name) for name in needed]
    rows: list[tuple[int, int, int, int, int]] = []
    for line, record in enumerate(reader, start=2):
        if not record or all(not cell.strip() for cell in record):
            continue
        if len(rows) >= MAX_ROWS:
            raise HistoryError(f"Too many rows: at most {MAX_ROWS:,} candles or ticks per backtest.")
        try:
            cells = [record[i] for i in index]
            t = _parse_time(cells[0])
            if kind == "candles":
                o, h, low, c = (_parse_price(cell, name) for cell, name in zip(cells[1:], needed[1:], strict=True))
            else:
                o = h = low = c = _parse_price(cells[1], "price")
        except IndexError:
            raise HistoryError(f"Line {line}: expected {len(header)} columns, got {len(record)}.") from None
        except (ValueError, ArithmeticError) as exc:
            raise HistoryError(f"Line {line}: {exc}.") from None
        rows.append((t, o, h, low, c))
    if not rows:
        raise HistoryError("The file has a header but no rows.")
    span = _infer_span([r[0] for r in rows]) if kind == "candles" else 0
    try:
        return build(kind, span, rows)
    except HistoryError as exc:
        # build() counts data rows; the CSV line is one more (the header).
        raise HistoryError(str(exc).replace("Row ", "Data row ")) from None


def from_candles(rows: Iterable[tuple[datetime, Decimal, Decimal, Decimal, Decimal]], span_ms: int) -> History:
    """A candle history from ``(time, open, high, low, close)`` tuples in any order (duplicates dropped)."""
    unique = {
        ms_of(t): (to_half_ticks(o), to_half_ticks(h), to_half_ticks(low), to_half_ticks(c)) for t, o, h, low, c in rows
    }
    return build("candles", span_ms, ((t, *unique[t]) for t in sorted(unique)))


# --- storage ---------------------------------------------------------------------------------------------------------


def pack(history: History) -> bytes:
    """A compact, compressed byte string of the history (stored with a run, so a result can be replayed again)."""
    header = f"{history.kind}:{history.span_ms}:{len(history)}".encode()
    body = b"".join(column.tobytes() for column in _columns(history))
    return _MAGIC + len(header).to_bytes(2, "big") + header + zlib.compress(body, 6)


def unpack(blob: bytes) -> History:
    if not blob.startswith(_MAGIC):
        raise HistoryError("Stored history is not in a known format.")
    size = int.from_bytes(blob[len(_MAGIC) : len(_MAGIC) + 2], "big")
    start = len(_MAGIC) + 2
    kind, span, count = blob[start : start + size].decode().split(":")
    body = zlib.decompress(blob[start + size :])
    columns = []
    width = int(count) * 8
    for i in range(5):
        column = array("q")
        column.frombytes(body[i * width : (i + 1) * width])
        columns.append(column)
    if kind not in ("candles", "ticks"):
        raise HistoryError("Stored history is not in a known format.")
    return History("candles" if kind == "candles" else "ticks", int(span), *columns)


def _columns(history: History) -> tuple[array[int], ...]:
    return history.times, history.opens, history.highs, history.lows, history.closes


# --- chart -----------------------------------------------------------------------------------------------------------


def downsample(history: History, points: int = 1500) -> dict[str, list[float]]:
    """At most ``points`` buckets of (time s, low, high, close) in USD for the chart: every extreme is kept."""
    n = len(history)
    step = max(1, -(-n // points))
    times: list[float] = []
    lows: list[float] = []
    highs: list[float] = []
    closes: list[float] = []
    h_lows, h_highs = history.lows, history.highs
    for start in range(0, n, step):
        end = min(n, start + step)
        times.append(history.times[start] / 1000)
        lows.append(min(h_lows[start:end]) / 2)
        highs.append(max(h_highs[start:end]) / 2)
        closes.append(history.closes[end - 1] / 2)
    return {"t": times, "low": lows, "high": highs, "close": closes}
