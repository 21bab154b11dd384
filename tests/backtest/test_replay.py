"""The replay applies LN Markets' rules (docs/protocol.md §9) and walks each candle in the worst order."""

from __future__ import annotations

from decimal import Decimal

from backtest.replay import Rules, replay
from backtest.report import run_comparison, summary
from lnmarkets.maths import (
    fee,
    funding_fee,
    initial_liquidation_price,
    liquidation_price,
    margin_from_quantity,
    pnl,
)
from tests.backtest.helpers import HOUR, candles, entry, guard, long, portfolio, short, ticks

NO_FUNDING = Rules(funding_rate=Decimal(0), latency_ms=0)


def test_baseline_long_is_liquidated_and_loses_margin_and_reserves():
    # 100 USD at 10x from 100 000: margin 10 000, liquidation 90 909, reserves 100 + 110 (§9.7 worked example)
    result = replay(ticks([100000, 95000, 90909]), portfolio(long()), NO_FUNDING, None)
    assert result.liquidations == 1
    assert result.start_equity == 1_000_000 + 10_000 + 210
    assert result.final_balance == 1_000_000  # maintenance 110 − closing fee 110 at 90 909 comes back: nothing
    assert result.pnl == -10_210
    (event,) = result.actions
    assert (event.source, event.kind, event.fill) == ("exchange", "liquidation", Decimal("90909.0"))


def test_guard_closes_before_liquidation_and_the_report_counts_it_avoided():
    history = ticks([100000, 95000, 90909])
    result = replay(history, portfolio(long()), NO_FUNDING, guard(threshold=Decimal(5)))
    assert result.liquidations == 0
    close = next(a for a in result.actions if a.kind == "close")
    assert (close.outcome, close.price, close.fill) == ("done", Decimal("95000.0"), Decimal("95000.0"))
    pl = pnl("buy", 100, Decimal(100000), Decimal(95000))
    assert pl == -5263
    assert result.final_balance == 1_000_000 + 10_000 + pl + 110 - fee(100, Decimal(95000))
    assert result.fees == 100 + 105
    comparison = run_comparison(history, portfolio(long()), NO_FUNDING, [guard(threshold=Decimal(5))])
    figures = summary(comparison.results[0], comparison.baseline.liquidated_lineages())
    assert figures["liquidations_avoided"] == 1
    assert figures["closed_by"] == {"a": "automation"}


def test_latency_lets_the_exchange_liquidate_before_the_close_lands():
    history = ticks([100000, 95000, 90909, 90000], every_ms=1000)
    result = replay(history, portfolio(long()), Rules(funding_rate=Decimal(0), latency_ms=2000), guard())
    assert result.liquidations == 1
    close = next(a for a in result.actions if a.kind == "close")
    assert close.outcome == "rejected: the trade is no longer running"
    # decided at the 95 000 tick, at its time
    assert close.price == Decimal("95000.0")


def test_latency_fills_at_the_price_when_the_order_lands():
    history = ticks([100000, 95000, 94000, 96000], every_ms=1000)
    result = replay(history, portfolio(long()), Rules(funding_rate=Decimal(0), latency_ms=1500), guard())
    close = next(a for a in result.actions if a.kind == "close")
    assert (close.price, close.fill) == (Decimal("95000.0"), Decimal("94000.0"))  # lands at 2.5 s: 94 000 holds


def test_a_long_sees_the_low_of_a_candle_before_its_high():
    folio = portfolio(long(takeprofit=Decimal(105000)))
    result = replay(candles([(100000, 106000, 90000, 100000)]), folio, NO_FUNDING, None)
    assert [a.kind for a in result.actions] == ["liquidation"]


def test_a_short_sees_the_high_of_a_candle_before_its_low():
    folio = portfolio(short(takeprofit=Decimal(95000)))
    result = replay(candles([(100000, 112000, 94000, 100000)]), folio, NO_FUNDING, None)
    assert [a.kind for a in result.actions] == ["liquidation"]


def test_with_longs_and_shorts_the_extreme_nearer_a_liquidation_comes_first():
    # a 10x long with a take-profit at 102 000 (liquidation 90 909) and a 50x short (liquidation ≈ 102 041)
    folio = portfolio(long("l", leverage=10, takeprofit=Decimal(102000)), short("s", leverage=50))
    # the low goes 1 % past the long's liquidation, the high 0.45 % past the short's: the low comes first
    result = replay(candles([(100000, 102500, 90000, 100000)]), folio, NO_FUNDING, None)
    assert [(a.kind, a.trade_id) for a in result.actions] == [("liquidation", "l"), ("liquidation", "s")]
    # the high goes 1.4 % past the short's, the low 0.1 % past the long's: the high first, so the long's TP is hit
    result = replay(candles([(100000, 103500, 90800, 100000)]), folio, NO_FUNDING, None)
    assert [(a.kind, a.trade_id) for a in result.actions] == [("takeprofit", "l"), ("liquidation", "s")]


def test_take_profit_then_stop_loss_exit_at_their_level():
    folio = portfolio(long(stoploss=Decimal(98000), takeprofit=Decimal(101000)))
    result = replay(ticks([100000, 101500]), folio, NO_FUNDING, None)
    (event,) = result.actions
    assert (event.kind, event.fill) == ("takeprofit", Decimal(101000))
    expected = 10_000 + pnl("buy", 100, Decimal(100000), Decimal(101000)) + 110 - fee(100, Decimal(101000))
    assert result.final_balance == 1_000_000 + expected


def test_funding_every_8_hours_long_pays_from_margin_short_receives():
    rules = Rules(funding_rate=Decimal("0.0001"), latency_ms=0)
    history = ticks([100000, 100000, 100000], every_ms=4 * HOUR)  # 00:00, 04:00, 08:00 UTC
    result = replay(history, portfolio(long("l"), short("s")), rules, None)
    paid = funding_fee(100, Decimal(100000), Decimal("0.0001"))
    assert paid == 10
    assert result.funding == 0  # the long paid 10, the short received 10
    assert result.counts["funding"] == 1
    levels = result.liquidation_levels["l"]
    assert levels[-1][1] == float(liquidation_price("buy", 100, Decimal(100000), 10_000 - paid))
    assert result.final_balance == 1_000_000 + paid


def test_negative_funding_rate_reverses_who_pays():
    rules = Rules(funding_rate=Decimal("-0.0001"), latency_ms=0)
    result = replay(ticks([100000, 100000], every_ms=8 * HOUR), portfolio(short()), rules, None)
    assert result.funding == 10


def test_size_buckets_price_a_large_trade_half_a_dollar_away():
    result = replay(ticks([100000]), portfolio(long(quantity=20_000)), NO_FUNDING, None)
    # 20 000 USD is in the second bucket: ask = last + 0.5 → bought at 100 000.5, marked at the bid 99 999.5
    entry_price = Decimal("100000.5")
    margin = margin_from_quantity(20_000, entry_price, Decimal(10))
    liquidation = initial_liquidation_price("buy", 20_000, entry_price, Decimal(10))
    assert result.liquidation_levels["a"][0][1] == float(liquidation)
    reserves = fee(20_000, entry_price) + fee(20_000, liquidation)
    assert result.start_equity == 1_000_000 + margin + reserves
    maintenance = reserves - fee(20_000, entry_price)
    mark = Decimal("99999.5")
    value = margin + pnl("buy", 20_000, entry_price, mark) + maintenance - fee(20_000, mark)
    assert result.end_equity == 1_000_000 + value


def test_the_tick_rounding_of_a_csv_price():
    from backtest.history import to_half_ticks

    assert to_half_ticks(Decimal("100000.26")) == 200_001
    assert to_half_ticks(Decimal("100000.24")) == 200_000


def test_add_margin_moves_the_liquidation_and_counts_margin_spent():
    candidate = guard(threshold=Decimal(8), action="add_margin", add_margin_mode="fixed", add_margin_amount=4000)
    result = replay(ticks([100000, 98000, 97000]), portfolio(long()), NO_FUNDING, candidate)
    assert result.margin_added == 4000
    assert result.liquidation_levels["a"][-1][1] == float(liquidation_price("buy", 100, Decimal(100000), 14_000))
    assert result.final_balance == 1_000_000 - 4000


def test_reduce_closes_and_reopens_the_rest_with_the_same_leverage():
    candidate = guard(threshold=Decimal(5), action="reduce", reduce_percent=Decimal(50))
    result = replay(ticks([100000, 95000]), portfolio(long()), NO_FUNDING, candidate)
    (reduce,) = [a for a in result.actions if a.kind == "reduce"]
    assert reduce.outcome == "done"
    assert reduce.value == "50/50"
    assert result.outcomes["a"].closed_by == "still open"
    levels = [value for _, value in result.liquidation_levels["a"]]
    assert levels[-2] is None  # the 100 USD trade closed …
    assert levels[-1] == float(initial_liquidation_price("buy", 50, Decimal(95000), Decimal(10)))  # … 50 reopened
    assert result.fees == 100 + fee(100, Decimal(95000)) + fee(50, Decimal(95000))


def test_a_price_triggered_entry_never_fills_better_than_its_trigger_on_candles():
    candidate = entry(trigger="price_below", trigger_price=Decimal(97000))
    on_candles = replay(candles([(100000, 100000, 90000, 91000)]), portfolio(), NO_FUNDING, candidate)
    (opened,) = [a for a in on_candles.actions if a.kind == "open"]
    assert opened.fill == Decimal(97000)
    on_ticks = replay(ticks([100000, 90000]), portfolio(), NO_FUNDING, candidate)
    (opened,) = [a for a in on_ticks.actions if a.kind == "open"]
    assert opened.fill == Decimal(90000)  # a real tick is a real price


def test_entry_refused_without_balance_is_a_skip_from_the_engine():
    candidate = entry(trigger="immediate", quantity=100_000)
    result = replay(ticks([100000, 100000]), portfolio(balance=1000), NO_FUNDING, candidate)
    assert [a.kind for a in result.actions] == ["skip"]
    assert "insufficient" in result.actions[0].reason or "balance" in result.actions[0].reason
