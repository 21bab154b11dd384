"""The simulator's own price history: made-up days at start (``history_days``), served by the OHLC endpoint at every
resolution, and kept in the state file across restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from lnmarkets.client import RestClient
from lnmarkets.simulator import SimulatorConfig, start_in_thread
from lnmarkets.simulator.exchange import Exchange
from lnmarkets.simulator.persist import load_state, save_state

NOW = datetime(2026, 11, 30, 12, 30, 15, tzinfo=UTC)


def _exchange(**extra: object) -> Exchange:
    return Exchange(SimulatorConfig(seed=7, price=Decimal(95000), **extra), clock=lambda: NOW)  # type: ignore[arg-type]


def test_history_days_make_a_continuous_minute_history_ending_at_the_price() -> None:
    exchange = _exchange(history_days=2)
    minutes: list[dict[str, Any]] = exchange.candles.candles("1m")  # newest first
    assert len(minutes) == 2 * 1440 + 1
    assert minutes[0]["time"] == datetime(2026, 11, 30, 12, 30, tzinfo=UTC)
    assert minutes[1]["close"] == Decimal(95000)
    assert minutes[-1]["time"] == datetime(2026, 11, 30, 12, 30, tzinfo=UTC) - timedelta(minutes=2 * 1440)
    for candle in minutes:
        assert candle["low"] <= min(candle["open"], candle["close"])
        assert candle["high"] >= max(candle["open"], candle["close"])
        assert candle["close"] % Decimal("0.5") == 0
    # Seeded: the same seed makes the same history; a walk, not a flat line.
    assert _exchange(history_days=2).candles.candles("1m") == minutes
    assert len({c["close"] for c in minutes}) > 100
    hours: list[dict[str, Any]] = exchange.candles.candles("1h")
    assert max(c["high"] for c in hours) == max(c["high"] for c in minutes)
    assert min(c["low"] for c in hours) == min(c["low"] for c in minutes)


def test_no_history_by_default() -> None:
    assert len(_exchange().candles.candles("1m")) == 1


def test_the_state_file_keeps_the_candles(tmp_path) -> None:
    path = str(tmp_path / "state.json")
    exchange = _exchange(history_days=1)
    save_state(exchange, path)
    restored = Exchange(SimulatorConfig(seed=99, price=Decimal(1)))
    assert load_state(restored, path) is True
    assert restored.candles.candles("5m") == exchange.candles.candles("5m")


def test_the_ohlc_endpoint_serves_the_history_through_the_client() -> None:
    sim = start_in_thread(
        SimulatorConfig(seed=3, price=Decimal(100000), history_days=3, rate_limits=False, auto_tick=False)
    )
    client = RestClient(sim.rest_url, None, timeout=5)
    try:
        page = client.futures_candles_list(range="1h", limit=1000)
        assert 72 <= len(page.data) <= 74
        assert page.data[0].time > page.data[-1].time  # newest first
        assert page.data[0].close == Decimal(100000)
        days = client.futures_candles_list(range="1d", limit=10).data
        assert max(d.high for d in days) == max(h.high for h in page.data)
        first = client.futures_candles_list(range="1m", limit=1000)
        assert len(first.data) == 1000
        assert first.next_cursor is not None
        older = client.futures_candles_list(range="1m", limit=1000, cursor=first.next_cursor)
        assert older.data[0].time == first.data[-1].time - timedelta(minutes=1)
    finally:
        client.close()
        sim.stop()
