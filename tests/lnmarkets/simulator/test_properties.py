"""Hypothesis properties of the maths and of the in-memory Exchange (no HTTP)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from lnmarkets.maths import initial_liquidation_price, is_on_tick, pnl
from lnmarkets.simulator.config import SimulatorConfig
from lnmarkets.simulator.errors import ApiError
from lnmarkets.simulator.exchange import Exchange
from lnmarkets.simulator.validation import parse_order

prices = st.integers(min_value=20_000, max_value=2_000_000).map(lambda n: Decimal(n) / 2)  # 10 000 – 1 000 000
quantities = st.integers(min_value=1, max_value=500_000)
leverages = st.integers(min_value=100, max_value=10_000).map(lambda n: Decimal(n) / 100)  # 1.00 – 100.00
sides = st.sampled_from(["buy", "sell"])
FIXED_NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@given(side=sides, quantity=quantities, entry=prices)
def test_pnl_is_zero_at_the_entry_price(side, quantity, entry):
    assert pnl(side, quantity, entry, entry) == 0


@given(quantity=quantities, entry=prices, exit_price=prices)
def test_pnl_has_the_sign_of_the_move(quantity, entry, exit_price):
    long = pnl("buy", quantity, entry, exit_price)
    short = pnl("sell", quantity, entry, exit_price)
    assert long == -short
    if exit_price > entry:
        assert long >= 0
    elif exit_price < entry:
        assert long <= 0
    exact = Decimal(quantity) * 100_000_000 * (1 / entry - 1 / exit_price)
    assert abs(long - exact) <= Decimal("0.5")


@given(quantity=quantities, entry=prices, leverage=leverages)
def test_long_liquidation_below_entry_below_short_liquidation(quantity, entry, leverage):
    long_liq = initial_liquidation_price("buy", quantity, entry, leverage)
    short_liq = initial_liquidation_price("sell", quantity, entry, leverage)
    assert long_liq < entry < short_liq
    assert is_on_tick(long_liq)
    assert is_on_tick(short_liq)


@settings(max_examples=60, deadline=None)
@given(side=sides, quantity=st.integers(1, 10_000), leverage=st.integers(1, 100), price=prices)
def test_exchange_trades_open_with_liquidation_on_the_right_side(side, quantity, leverage, price):
    exchange = Exchange(SimulatorConfig(seed=1, price=price), clock=lambda: FIXED_NOW)
    account, _ = exchange.create_account(balance=10**12)
    trade = exchange.open_trade(
        account.id, parse_order({"type": "market", "side": side, "quantity": quantity, "leverage": leverage})
    )
    if side == "buy":
        assert trade.liquidation < trade.price
    else:
        assert trade.liquidation > trade.price


PRICE_FIELDS = ("price", "entryPrice", "liquidation", "stoploss", "takeprofit", "exitPrice")


class ExchangeMachine(RuleBasedStateMachine):
    """Random open / add-margin / cash-in / close / cancel / price moves / funding against one Exchange.

    After every step: money is conserved per account, balances are never negative, every price sent out is on the
    0.5 tick.
    """

    @initialize(seed=st.integers(0, 2**16), price=prices)
    def start(self, seed, price):
        self.exchange = Exchange(
            SimulatorConfig(seed=seed, price=price, annual_volatility=Decimal(5)), clock=lambda: FIXED_NOW
        )
        self.accounts = [self.exchange.create_account(balance=b)[0].id for b in (5_000_000, 200_000)]

    def _trade_ids(self):
        return list(self.exchange.trades)

    @rule(
        who=st.integers(0, 1),
        side=sides,
        kind=st.sampled_from(["market", "limit"]),
        quantity=st.integers(1, 20_000),
        leverage=st.integers(1, 100),
        offset=st.integers(-400, 400),
        sl=st.integers(0, 40),
        tp=st.integers(0, 40),
    )
    def open(self, who, side, kind, quantity, leverage, offset, sl, tp):
        body = {"type": kind, "side": side, "quantity": quantity, "leverage": leverage}
        base = self.exchange.last_price
        if kind == "limit":
            body["price"] = base + Decimal(offset) / 2
        direction = 1 if side == "buy" else -1
        if sl:
            body["stoploss"] = base - direction * Decimal(sl) * 100
        if tp:
            body["takeprofit"] = base + direction * Decimal(tp) * 100
        with contextlib.suppress(ApiError):
            self.exchange.open_trade(self.accounts[who], parse_order(body))

    @precondition(lambda self: self.exchange.trades)
    @rule(data=st.data(), amount=st.integers(1, 50_000), op=st.sampled_from(["add_margin", "cash_in"]))
    def change_margin(self, data, amount, op):
        trade = self.exchange.trades[data.draw(st.sampled_from(self._trade_ids()))]
        with contextlib.suppress(ApiError):
            getattr(self.exchange, op)(trade.account_id, trade.id, amount)

    @precondition(lambda self: self.exchange.trades)
    @rule(data=st.data(), op=st.sampled_from(["close_trade", "cancel_trade"]))
    def finish(self, data, op):
        trade = self.exchange.trades[data.draw(st.sampled_from(self._trade_ids()))]
        with contextlib.suppress(ApiError):
            getattr(self.exchange, op)(trade.account_id, trade.id)

    @rule(move=st.integers(-4_000, 4_000))
    def set_price(self, move):
        price = max(self.exchange.last_price + Decimal(move) * 2, Decimal(1000))
        self.exchange.tick(price)

    @rule(n=st.integers(1, 20))
    def random_walk(self, n):
        for _ in range(n):
            self.exchange.tick()

    @rule(rate=st.integers(-100, 100))
    def funding(self, rate):
        self.exchange.settle_funding(Decimal(rate) / 10_000)

    @invariant()
    def money_is_conserved(self):
        for account_id in self.accounts:
            assert self.exchange.conservation_gap(account_id) == 0
            assert self.exchange.accounts[account_id].balance >= 0

    @invariant()
    def prices_out_are_on_tick(self):
        ticker: Any = self.exchange.ticker()
        assert is_on_tick(ticker["lastPrice"])
        assert is_on_tick(ticker["index"])
        for quote in ticker["prices"]:
            assert is_on_tick(quote["bidPrice"])
            assert is_on_tick(quote["askPrice"])
        for trade in self.exchange.trades.values():
            data: Any = self.exchange.trade_json(trade)
            for name in PRICE_FIELDS:
                if data[name] is not None:
                    assert is_on_tick(data[name]), (name, data[name])

    @invariant()
    def live_trades_keep_liquidation_beyond_entry(self):
        for trade in self.exchange.trades.values():
            if trade.state == "running" and trade.margin > 0:
                assert (trade.liquidation <= trade.price) if trade.side == "buy" else (trade.liquidation >= trade.price)


ExchangeMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestExchangeMachine = ExchangeMachine.TestCase
