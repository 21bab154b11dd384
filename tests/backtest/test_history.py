"""Price histories: CSV candles and ticks with clear errors, storage, the chart's downsampling, the scenarios."""

from __future__ import annotations

from decimal import Decimal

import pytest

from backtest.history import HistoryError, datetime_of, downsample, pack, parse_csv, price_of, unpack
from backtest.scenarios import SCENARIOS, scenario_history

CANDLES = """time,open,high,low,close,volume
2026-01-01T00:00:00Z,100000,100100,99900,100050,12
2026-01-01T00:01:00Z,100050,100070.3,99800,99850.2,3
2026-01-01T00:02:00Z,99850,99900,99700,99750,0
"""


def test_candles_csv_is_parsed_to_the_tick_with_its_length():
    history = parse_csv(CANDLES.encode(), "candles")
    assert len(history) == 3
    assert history.kind == "candles"
    assert history.span_ms == 60_000
    assert price_of(history.highs[1]) == Decimal("100070.5")
    assert price_of(history.closes[1]) == Decimal("99850.0")
    assert datetime_of(history.start_ms).isoformat() == "2026-01-01T00:00:00+00:00"


def test_ticks_csv_accepts_unix_seconds_and_milliseconds():
    history = parse_csv("time,price\n1767225600,100000\n1767225601500,100001\n", "ticks")
    assert history.kind == "ticks"
    assert list(history.times) == [1_767_225_600_000, 1_767_225_601_500]
    assert list(history.opens) == [200_000, 200_002]


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("date,open,high,low,close\n", "candles", "Line 1: the header must name the columns"),
        ("time,price\n2026-01-01T00:00:00Z,abc\n", "ticks", "Line 2: price is not a number"),
        ("time,price\n2026-01-01T00:00:00Z,-5\n", "ticks", "Line 2: price must be a positive number"),
        ("time,price\nyesterday,100\n", "ticks", "Line 2:"),
        ("time,price\n2026-01-01T00:00:01Z,100\n2026-01-01T00:00:00Z,100\n", "ticks", "times must strictly increase"),
        (
            "time,open,high,low,close\n2026-01-01T00:00:00Z,100,99,98,100\n",
            "candles",
            "the high must be ≥ open and close",
        ),
        ("time,price\n", "ticks", "no rows"),
        ("time,price\n2026-01-01T00:00:00Z,5\n", "ticks", "prices must be between"),
        ("time,price\n2026-01-01T00:00:00Z\n", "ticks", "Line 2: expected 2 columns"),
    ],
)
def test_bad_csv_gets_a_clear_error(text, kind, message):
    with pytest.raises(HistoryError, match=message):
        parse_csv(text, kind)


def test_not_utf8_is_refused_clearly():
    with pytest.raises(HistoryError, match="not UTF-8"):
        parse_csv(b"time,price\n\xff\xfe", "ticks")


def test_pack_and_unpack_give_the_same_history():
    history = scenario_history("flash_crash", 5)
    again = unpack(pack(history))
    assert again == history
    assert len(pack(history)) < len(history) * 40


def test_downsample_keeps_every_extreme():
    history = scenario_history("flash_crash", 5)
    chart = downsample(history, points=100)
    assert len(chart["t"]) <= 100
    assert min(chart["low"]) == min(history.lows) / 2
    assert max(chart["high"]) == max(history.highs) / 2


def test_scenarios_are_deterministic_per_seed():
    assert scenario_history("slow_bleed", 3, minutes=500) == scenario_history("slow_bleed", 3, minutes=500)
    assert scenario_history("slow_bleed", 3, minutes=500) != scenario_history("slow_bleed", 4, minutes=500)


@pytest.mark.parametrize(
    ("name", "low", "high", "close"),
    [
        ("flash_crash", 0.83, 1.01, 1.0),  # −15 % and back
        ("slow_bleed", 0.68, 1.01, 0.70),  # −30 % over the week
        ("short_squeeze", 0.99, 1.22, 1.20),  # +20 % in an hour
        ("sideways_chop", 0.94, 1.06, 1.0),  # ±3 % swings
    ],
)
def test_scenarios_have_their_shape(name, low, high, close):
    history = scenario_history(name, 1)
    start = history.first_price()
    assert min(history.lows) / start == pytest.approx(low, abs=0.02)
    assert max(history.highs) / start == pytest.approx(high, abs=0.02)
    assert history.last_price() / start == pytest.approx(close, abs=0.02)
    assert len(history) == SCENARIOS[name].minutes


def test_flash_crash_falls_15_percent_within_ten_minutes():
    history = scenario_history("flash_crash", 2)
    bottom = min(range(len(history)), key=lambda i: history.lows[i])
    assert 600 <= bottom <= 612
    assert history.lows[bottom] / history.closes[598] < 0.87
