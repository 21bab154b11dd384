"""Inverse BTC/USD futures maths of LN Markets (docs/protocol.md §9), pure and in integers or ``Decimal``.

Units: quantities are integer USD contracts, margins/fees/PnL integer sats, prices ``Decimal`` USD per BTC on the
0.5 tick. Rounding, as documented: margin from quantity rounds **up**, quantity from margin rounds **down**, fees
round **down**, PnL and funding round to the **nearest** sat (half away from zero, so a long's PnL is exactly minus
the mirrored short's), liquidation rounds to the **nearest** 0.5.

Shared by the simulator (which is the exchange in tests), the automation engine and the dashboard.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext
from typing import Literal

Side = Literal["buy", "sell"]

SATS = 100_000_000
TICK = Decimal("0.5")
MAX_PRICE = Decimal(100_000_000)
TIER_FEE_RATES: tuple[Decimal, ...] = (Decimal("0.001"), Decimal("0.0008"), Decimal("0.0007"), Decimal("0.0006"))
TIER1_FEE_RATE = TIER_FEE_RATES[0]
ONE = Decimal(1)
ZERO = Decimal(0)


def D(value: int | str | Decimal) -> Decimal:  # noqa: N802 - a conventional short constructor
    """``Decimal`` from an int, a string or a Decimal; floats are refused (they carry binary rounding)."""
    if isinstance(value, float):
        raise TypeError("float is not accepted for money; pass str or Decimal")
    return Decimal(value)


def is_on_tick(price: Decimal) -> bool:
    """True when ``price`` is a multiple of 0.5."""
    return price % TICK == 0


def round_to_tick(price: Decimal, rounding: str = ROUND_HALF_UP) -> Decimal:
    """Round a price to the 0.5 tick (nearest by default; pass ``ROUND_FLOOR``/``ROUND_CEILING`` for a side)."""
    return ((price / TICK).to_integral_value(rounding=rounding) * TICK).quantize(Decimal("0.1"))


def _to_int(value: Decimal, rounding: str) -> int:
    return int(value.to_integral_value(rounding=rounding))


def margin_from_quantity(quantity: int, price: Decimal, leverage: Decimal) -> int:
    """Initial margin in sats for ``quantity`` USD at ``price`` and ``leverage``, rounded up (§9.1)."""
    with localcontext() as ctx:
        ctx.prec = 40
        return _to_int(Decimal(quantity) * SATS / (price * leverage), ROUND_CEILING)


def quantity_from_margin(margin: int, price: Decimal, leverage: Decimal) -> int:
    """USD quantity bought by ``margin`` sats at ``price`` and ``leverage``, rounded down (§9.1)."""
    with localcontext() as ctx:
        ctx.prec = 40
        return _to_int(Decimal(margin) * leverage * price / SATS, ROUND_FLOOR)


def leverage_of(quantity: int, margin: int, price: Decimal) -> Decimal:
    """Effective leverage ``quantity × SATS / (margin × price)`` (after add-margin or cash-in)."""
    if margin <= 0:
        raise ValueError("margin must be positive")
    with localcontext() as ctx:
        ctx.prec = 40
        return Decimal(quantity) * SATS / (Decimal(margin) * price)


def liquidation_price(side: Side, quantity: int, price: Decimal, margin: int) -> Decimal:
    """Liquidation price of an isolated trade holding ``margin`` sats, rounded to the nearest 0.5 (§9.2).

    long ``1/(1/price + b)``, short ``1/(1/price − b)`` with ``b = margin / SATS / quantity``; a short whose margin
    covers any rise (``b ≥ 1/price``) is capped at 100 000 000 as the Rust SDK does.
    """
    with localcontext() as ctx:
        ctx.prec = 40
        b = Decimal(margin) / SATS / Decimal(quantity)
        inv = ONE / price
        if side == "buy":
            liq = ONE / (inv + b)
        else:
            rest = inv - b
            liq = MAX_PRICE if rest <= 0 else min(ONE / rest, MAX_PRICE)
        return round_to_tick(liq)


def initial_liquidation_price(side: Side, quantity: int, price: Decimal, leverage: Decimal) -> Decimal:
    """Liquidation at order time: the margin is *floored* for this purpose (Rust SDK, matches the platform)."""
    with localcontext() as ctx:
        ctx.prec = 40
        floored = _to_int(Decimal(quantity) * SATS / price / leverage, ROUND_FLOOR)
    return liquidation_price(side, quantity, price, floored)


def fee(quantity: int, price: Decimal, rate: Decimal = TIER1_FEE_RATE) -> int:
    """A trading fee in sats, ``floor(rate × SATS × quantity / price)`` (§9.3)."""
    with localcontext() as ctx:
        ctx.prec = 40
        return _to_int(rate * SATS * Decimal(quantity) / price, ROUND_FLOOR)


def fee_reserves(quantity: int, entry: Decimal, liquidation: Decimal) -> tuple[int, int]:
    """(opening, closing) fee reserves at Tier 1, debited with the margin when an order is placed (§9.3)."""
    return fee(quantity, entry), fee(quantity, liquidation)


def pnl(side: Side, quantity: int, entry: Decimal, exit_price: Decimal) -> int:
    """Profit or loss in sats: long ``q × SATS × (1/entry − 1/exit)``, short the opposite (§9.4)."""
    with localcontext() as ctx:
        ctx.prec = 40
        value = Decimal(quantity) * SATS * (ONE / entry - ONE / exit_price)
        if side == "sell":
            value = -value
        return _to_int(value, ROUND_HALF_UP)


def pnl_percent(pl: int, margin: int) -> Decimal:
    """PnL as a signed percentage of the trade margin (sats / sats × 100, never sats / USD)."""
    if margin <= 0:
        raise ValueError("margin must be positive")
    return Decimal(pl) * 100 / Decimal(margin)


def margin_ratio(maintenance_margin: int, margin: int, pl: int) -> Decimal:
    """LN Markets' margin ratio in percent; liquidation happens at 100 % (§9.9).

    ``maintenance / (maintenance + margin + pl)`` where ``maintenance`` is the trade's current ``maintenanceMargin``
    (the opening fee already deducted at fill). At the liquidation price ``margin + pl`` reaches 0, so the ratio
    reaches 100 %; a denominator at or below zero is reported as 100 %.
    """
    denominator = maintenance_margin + margin + pl
    if denominator <= 0 or maintenance_margin >= denominator:
        return Decimal(100)
    return Decimal(maintenance_margin) * 100 / Decimal(denominator)


def distance_to_liquidation(mark: Decimal, liquidation: Decimal) -> Decimal:
    """``|mark − liquidation| / mark`` in percent."""
    return abs(mark - liquidation) * 100 / mark


def funding_fee(quantity: int, fixing_price: Decimal, rate: Decimal) -> int:
    """Funding in sats, ``quantity / fixing_price × rate × SATS`` rounded to the nearest sat (§9.5).

    Positive: a long pays (a short receives); a negative rate reverses it. The caller applies the sign per side.
    """
    with localcontext() as ctx:
        ctx.prec = 40
        return _to_int(Decimal(quantity) / fixing_price * rate * SATS, ROUND_HALF_UP)


def entry_price_after_cash_in(side: Side, quantity: int, entry: Decimal, amount: int) -> Decimal:
    """New (unrounded) entry price after taking ``amount`` sats out of a positive PnL (§9.6 step 2).

    The remaining PnL must be ``pl − amount``: for a long ``1/new = 1/entry − amount/(q·SATS)`` (the entry moves up,
    towards the market), for a short ``1/new = 1/entry + amount/(q·SATS)``.
    """
    with localcontext() as ctx:
        ctx.prec = 40
        delta = Decimal(amount) / (Decimal(quantity) * SATS)
        inv = ONE / entry - delta if side == "buy" else ONE / entry + delta
        return ONE / inv
