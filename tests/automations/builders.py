"""Builders for the engine tests: small, explicit, with the numbers of docs/protocol.md §9.7's worked example.

The reference trade is 100 USD at 10x filled at 100 000: margin 10 000 sats, liquidation 90 909.0 (long) or
111 111.0 (short), opening fee 100, maintenance margin 110 (long) / 90 (short).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from automations.engine import (
    AccountState,
    AutomationSpec,
    Bucket,
    MarketSnapshot,
    Memory,
    TradeState,
)
from automations.kinds import kind_of_config
from automations.specs import AutomationConfig
from lnmarkets.maths import Side, fee, initial_liquidation_price, margin_from_quantity

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
D = Decimal


def market(
    last: Decimal | int | str = 100000,
    *,
    bid: Decimal | int | str | None = None,
    ask: Decimal | int | str | None = None,
    age: float = 0.0,
    buckets: tuple[Bucket, ...] = (),
    now: datetime = NOW,
) -> MarketSnapshot:
    """A ticker at ``last`` with a 0.5 spread around it unless bid/ask are given, ``age`` seconds before ``now``."""
    last_d = D(last)
    return MarketSnapshot(
        last_price=last_d,
        index=last_d,
        bid=D(bid) if bid is not None else last_d - D("0.5"),
        ask=D(ask) if ask is not None else last_d + D("0.5"),
        time=now - timedelta(seconds=age),
        buckets=buckets,
    )


def trade(
    side: Side = "buy",
    *,
    trade_id: str = "t1",
    quantity: int = 100,
    entry: Decimal | int | str = 100000,
    leverage: Decimal | int = 10,
    margin: int | None = None,
    liquidation: Decimal | int | str | None = None,
    stoploss: Decimal | int | str = 0,
    takeprofit: Decimal | int | str = 0,
    maintenance_margin: int | None = None,
    opening_fee: int | None = None,
    managed: bool = True,
) -> TradeState:
    """A running trade; margin, liquidation and fees follow LN Markets' maths unless given."""
    entry_d = D(entry)
    lev = D(leverage)
    liq = D(liquidation) if liquidation is not None else initial_liquidation_price(side, quantity, entry_d, lev)
    return TradeState(
        id=trade_id,
        side=side,
        quantity=quantity,
        entry_price=entry_d,
        margin=margin if margin is not None else margin_from_quantity(quantity, entry_d, lev),
        leverage=lev,
        liquidation=liq,
        stoploss=D(stoploss),
        takeprofit=D(takeprofit),
        maintenance_margin=maintenance_margin if maintenance_margin is not None else fee(quantity, liq),
        opening_fee=opening_fee if opening_fee is not None else fee(quantity, entry_d),
        client_id=f"axisor-{trade_id}",
        managed=managed,
    )


def account(
    *trades: TradeState, balance: int = 1_000_000, halted: bool = False, kill_switch: bool = False
) -> AccountState:
    return AccountState(balance=balance, trades=trades, entries_halted=halted, kill_switch=kill_switch)


def spec(config: AutomationConfig, memory: Memory | None = None, *, max_age: int = 15) -> AutomationSpec:
    return AutomationSpec(1, kind_of_config(config).key, config, memory or Memory(), max_price_age_seconds=max_age)
