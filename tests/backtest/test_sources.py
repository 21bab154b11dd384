"""Where prices come from: the exchange's candle endpoint (the simulator serves it from its own ticks), and the
task chain running in the embedded default's in-process Celery worker (memory:// transport)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from backtest.history import price_of
from backtest.models import BacktestResult, BacktestRun
from backtest.replay import TradeSpec
from backtest.services import RunSettings, backtest_create, exchange_history

pytestmark = pytest.mark.django_db(transaction=True)


def test_exchange_candles_from_the_simulator(sim, sim_network):
    start = timezone.now() - timedelta(minutes=1)
    for price in (100000, 95000, 103000, 99000):
        sim.control.set_price(price)
    history = exchange_history(network="simulator", start=start, end=timezone.now(), resolution="1m")
    assert history.kind == "candles"
    assert history.span_ms == 60_000
    assert 1 <= len(history) <= 3
    # the simulator is shared by the session: the current minute's candle may hold earlier tests' ticks too
    assert price_of(min(history.lows)) <= Decimal(95000)
    assert price_of(max(history.highs)) >= Decimal(103000)
    assert price_of(history.closes[-1]) == Decimal(99000)


def test_a_range_with_no_candles_is_a_clear_error(sim, sim_network):
    from backtest.history import HistoryError

    start = timezone.now() - timedelta(days=3000)
    with pytest.raises(HistoryError, match="no candles"):
        exchange_history(network="simulator", start=start, end=start + timedelta(hours=1), resolution="1m")


@pytest.mark.skipif(bool(settings.REDIS_URL), reason="the embedded default's in-process worker uses memory://")
def test_the_task_runs_in_the_embedded_in_process_worker(alice):
    from automations.inprocess import start_worker_thread
    from config.celery import app

    stop = start_worker_thread(app)
    try:
        run = backtest_create(
            owner=alice,
            name="in-process",
            source=BacktestRun.Source.SCENARIO,
            source_params={"scenario": "flash_crash", "seed": 3, "start_price": "100000"},
            configs=[
                {
                    "label": "close 5",
                    "kind": "margin_guard",
                    "config": {"trigger": "liquidation_distance", "threshold": "5", "action": "close"},
                }
            ],
            run_settings=RunSettings(
                balance=1_000_000,
                trades=(TradeSpec("t1", "buy", 200, Decimal(25)),),
                rebase=False,
                funding_rate=Decimal("0.0001"),
                fee_tier=1,
                latency_ms=1000,
            ),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.finished:
                break
            time.sleep(0.2)
        assert run.status == BacktestRun.Status.DONE, run.message
        assert BacktestResult.objects.filter(run=run).count() == 2
    finally:
        stop()


class _Page:
    def __init__(self, data, next_cursor):
        self.data, self.next_cursor = data, next_cursor


class _Candle:
    def __init__(self, minute: int, price: int):
        self.time = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minute)
        self.open = self.high = self.low = self.close = Decimal(price)


class _FakeCandles:
    """Five pages of three 1-minute candles, newest first, as the exchange pages them."""

    def __init__(self):
        self.calls: list[str | None] = []

    def futures_candles_list(self, *, cursor, **query):
        self.calls.append(cursor)
        assert query["range"] == "1m"
        page = 0 if cursor is None else int(cursor)
        data = [_Candle(minute, 100000 - minute * 100) for minute in range(14 - 3 * page, 11 - 3 * page, -1)]
        return _Page(data, None if page == 4 else str(page + 1))


def test_exchange_candles_are_fetched_a_few_pages_per_task(alice, make_account, monkeypatch):
    from backtest import services

    fake = _FakeCandles()
    monkeypatch.setattr("automations.exchange.public_client", lambda network: fake)
    monkeypatch.setattr(services, "FETCH_PAGES_PER_STEP", 2)
    monkeypatch.setattr(services, "backtest_enqueue", lambda run_id, step: None)
    account = make_account(alice)
    run = backtest_create(
        owner=alice,
        name="exchange",
        source=BacktestRun.Source.EXCHANGE,
        source_params={"from": "2026-01-01T00:00:00+00:00", "to": "2026-01-01T00:15:00+00:00", "resolution": "1m"},
        configs=[
            {
                "label": "close",
                "kind": "margin_guard",
                "config": {"trigger": "liquidation_distance", "threshold": "5", "action": "close"},
            }
        ],
        run_settings=RunSettings(1_000_000, (TradeSpec("t1", "buy", 100, Decimal(10)),), False, Decimal(0), 1, 0),
        account=account,
    )
    steps: list[int | None] = [0]
    while steps[-1] is not None:
        steps.append(services.backtest_run_step(run_id=run.pk, step=steps[-1]))
        if steps[-1] == services.FETCH_STEP:
            partial = BacktestRun.objects.get(pk=run.pk)
            assert partial.status == BacktestRun.Status.RUNNING
            assert partial.rows in (6, 12)  # two pages of three per task so far
    assert steps == [0, -1, -1, 1, None]
    assert fake.calls == [None, "1", "2", "3", "4"]
    run.refresh_from_db()
    assert run.status == BacktestRun.Status.DONE, run.message
    assert run.rows == 15
    assert run.source_params["fetch"] == {"cursor": None, "done": True, "rows": 15}
