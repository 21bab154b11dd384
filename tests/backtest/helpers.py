"""Small builders for backtest tests: histories from price lists, portfolios, candidates."""

from __future__ import annotations

from decimal import Decimal

from automations.engine import AutoEntryConfig, MarginGuardConfig, TpSlConfig
from backtest.history import History, build, to_half_ticks
from backtest.replay import Candidate, Portfolio, TradeSpec

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MINUTE = 60_000
HOUR = 3_600_000


def ticks(prices: list[int | str], *, every_ms: int = 1000, start_ms: int = START_MS) -> History:
    """A tick history: one tick every ``every_ms``."""
    rows = []
    for i, p in enumerate(prices):
        half = to_half_ticks(Decimal(p))
        rows.append((start_ms + i * every_ms, half, half, half, half))
    return build("ticks", 0, rows)


def candles(rows: list[tuple[int, int, int, int]], *, start_ms: int = START_MS, span_ms: int = MINUTE) -> History:
    """Candles from (open, high, low, close) in USD."""
    return build(
        "candles",
        span_ms,
        [
            (start_ms + i * span_ms, *(to_half_ticks(Decimal(v)) for v in row))  # type: ignore[misc]
            for i, row in enumerate(rows)
        ],
    )


def long(trade_id: str = "a", quantity: int = 100, leverage: int = 10, **kw: object) -> TradeSpec:
    return TradeSpec(trade_id, "buy", quantity, Decimal(leverage), **kw)  # type: ignore[arg-type]


def short(trade_id: str = "s", quantity: int = 100, leverage: int = 10, **kw: object) -> TradeSpec:
    return TradeSpec(trade_id, "sell", quantity, Decimal(leverage), **kw)  # type: ignore[arg-type]


def portfolio(*trades: TradeSpec, balance: int = 1_000_000) -> Portfolio:
    return Portfolio(balance, trades)


def guard(label: str = "guard", **fields: object) -> Candidate:
    fields.setdefault("trigger", "liquidation_distance")
    fields.setdefault("threshold", Decimal(5))
    fields.setdefault("action", "close")
    return Candidate(label, "margin_guard", MarginGuardConfig(**fields))  # type: ignore[arg-type]


def tpsl(label: str = "tpsl", **fields: object) -> Candidate:
    return Candidate(label, "tpsl", TpSlConfig(**fields))  # type: ignore[arg-type]


def entry(label: str = "entry", **fields: object) -> Candidate:
    fields.setdefault("side", "buy")
    fields.setdefault("leverage", Decimal(10))
    fields.setdefault("quantity", 100)
    fields.setdefault("margin", None)
    return Candidate(label, "auto_entry", AutoEntryConfig(**fields))  # type: ignore[arg-type]
