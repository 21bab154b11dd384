"""docs/reliability.md T13: one outlier tick never makes a guard act; a sustained move is acted on at its second
tick."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast

import pytest

from automations.exchange import public_client
from automations.models import OrderIntent
from automations.outliers import OutlierGate
from automations.runner import TickRunner
from automations.services.trades import account_reconcile
from tests.automations.conftest import margin_guard

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_spike_away_from_the_index_is_held_and_forgotten_when_the_price_comes_back():
    gate = OutlierGate()
    assert gate.admit(Decimal(100000), Decimal(100000), _at(0))
    assert not gate.admit(Decimal(92000), Decimal(100000), _at(0.5))  # 8 % from the index
    assert gate.admit(Decimal(100010), Decimal(100000), _at(1))
    assert gate.held == 1
    assert gate.last_price == Decimal(100010)


def test_a_jump_from_the_last_accepted_tick_waits_for_a_second_tick_that_confirms_it():
    gate = OutlierGate()
    assert gate.admit(Decimal(100000), Decimal(100000), _at(0))
    # the index moved too (a real move), but the price jumped 8 % within seconds of the last accepted tick
    assert not gate.admit(Decimal(92000), Decimal(92100), _at(0.4))
    assert gate.admit(Decimal(92050), Decimal(92100), _at(0.8))  # within 1 % of the held tick: confirmed


def test_a_second_tick_elsewhere_does_not_confirm_the_first_outlier():
    gate = OutlierGate()
    assert gate.admit(Decimal(100000), Decimal(100000), _at(0))
    assert not gate.admit(Decimal(92000), Decimal(100000), _at(0.2))
    assert not gate.admit(Decimal(108000), Decimal(100000), _at(0.4))  # another outlier, held in its turn
    assert gate.admit(Decimal(108100), Decimal(108000), _at(0.6))  # … which this one confirms


def test_a_jump_after_quiet_seconds_is_not_an_outlier_when_the_index_agrees():
    gate = OutlierGate()
    assert gate.admit(Decimal(100000), Decimal(100000), _at(0))
    assert gate.admit(Decimal(95000), Decimal(95050), _at(6))


@pytest.mark.django_db(transaction=True)
def test_the_tick_runner_never_closes_on_one_outlier_but_acts_on_a_confirmed_move(paper, sim, exchange):
    trade = exchange.isolated_trade_create(
        type="market", side="buy", quantity=100, leverage=Decimal(10), client_id="ax-outlier-open"
    )
    OrderIntent.objects.create(account=paper, action="open", client_id="ax-outlier-open", state="reconciled")
    account_reconcile(account_id=paper.pk)
    margin_guard(paper, threshold="5")  # liquidation ≈ 90 909: acts at 95 694 and below
    runner = TickRunner(cast(Any, None), "simulator")  # evaluate() alone: no feed subscription

    def tick(price: int, index: int | None = None) -> list[int]:
        sim.control.set_price(price, index)
        return runner.evaluate(cast(Any, public_client("simulator").futures_ticker_get()))

    assert tick(100000) == []
    assert tick(94000, index=100000) == []  # one bad print, 6 % below the index: held
    assert tick(100000) == []  # and gone
    assert not OrderIntent.objects.filter(action="close").exists()
    assert tick(94000) == []  # a real move (the index follows) is held once …
    (intent_id,) = tick(94000)  # … and acted on at its second tick
    assert OrderIntent.objects.get(pk=intent_id).trade_id == trade.id


def test_a_tick_is_evaluated_with_the_cyclic_collector_paused_and_it_resumes_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc

    from automations import runner as runner_module

    seen: list[bool] = []

    def evaluate(**kwargs: object) -> list[int]:
        seen.append(gc.isenabled())
        raise RuntimeError("the evaluation failed")  # the runner's error boundary; the collector must still resume

    monkeypatch.setattr(runner_module, "automations_evaluate_network", evaluate)
    monkeypatch.setattr(runner_module, "close_old_connections", lambda: None)
    runner = TickRunner(cast(Any, None), "simulator")
    market = SimpleNamespace(last_price=Decimal(100000), index=Decimal(100000), time=datetime.now(UTC))
    monkeypatch.setattr(runner_module, "market_from_ticker", lambda snapshot: market)
    assert gc.isenabled()
    assert runner.evaluate(cast(Any, None)) == []
    assert seen == [False]
    assert gc.isenabled()
    assert runner.errors == 1
