"""Deterministic stress scenarios: 1-minute candles around a shape (crash, bleed, squeeze, chop), noise from a seed.

Pure and reproducible: the same name, seed, start price and start time always give the same candles (the noise is
drawn from ``random.Random(seed)``; floats are used for the randomness only and every price is rounded to the 0.5
tick). The noise is a mean-reverting wiggle around the shape, so "−15 % and back" really comes back.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.utils.translation import gettext_lazy as _
from django_stubs_ext import StrOrPromise

from backtest.history import History, build, ms_of, to_half_ticks

MINUTE_MS = 60_000
SUBSTEPS = 6
DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULT_PRICE = Decimal(100_000)

Shape = Callable[[float], float]  # minute → multiplier of the start price


def _ramp(minute: float, start: float, length: float, to: float, base: float = 1.0) -> float:
    """Log-linear move from ``base`` to ``to`` between ``start`` and ``start + length`` minutes."""
    if minute <= start:
        return base
    if minute >= start + length:
        return to
    fraction = (minute - start) / length
    return base * math.exp(math.log(to / base) * fraction)


def _flash_crash(minute: float) -> float:
    # calm until 10:00, −15 % in 10 minutes, back to the start price over the next 20 minutes
    if minute < 610:
        return _ramp(minute, 600, 10, 0.85)
    return _ramp(minute, 610, 20, 1.0, base=0.85)


def _slow_bleed(minute: float) -> float:
    return _ramp(minute, 60, 7 * 1440, 0.70)


def _short_squeeze(minute: float) -> float:
    return _ramp(minute, 600, 60, 1.20)


def _sideways_chop(minute: float) -> float:
    # ±3 % swings with a 4-hour period, a faster ±1 % on top
    return 1 + 0.03 * math.sin(2 * math.pi * minute / 240) + 0.01 * math.sin(2 * math.pi * minute / 37)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    label: StrOrPromise
    description: StrOrPromise
    minutes: int
    shape: Shape
    noise: float  # standard deviation of the log-price noise per minute


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "flash_crash",
            _("Flash crash"),
            _("−15 % in 10 minutes and back within 20 minutes, in one day of 1-minute candles."),
            1440,
            _flash_crash,
            0.0006,
        ),
        Scenario(
            "slow_bleed",
            _("Slow bleed"),
            _("−30 % over a week, steadily, in 8 days of 1-minute candles."),
            8 * 1440,
            _slow_bleed,
            0.0008,
        ),
        Scenario(
            "short_squeeze",
            _("Short squeeze"),
            _("+20 % in one hour, then holding, in one day of 1-minute candles."),
            1440,
            _short_squeeze,
            0.0006,
        ),
        Scenario(
            "sideways_chop",
            _("Sideways chop"),
            _("±3 % swings every 4 hours for three days of 1-minute candles."),
            3 * 1440,
            _sideways_chop,
            0.0008,
        ),
    )
}


def scenario_history(
    name: str,
    seed: int,
    *,
    start_price: Decimal = DEFAULT_PRICE,
    start: datetime = DEFAULT_START,
    minutes: int | None = None,
) -> History:
    """The 1-minute candles of scenario ``name`` (``minutes`` overrides its length, for long benches)."""
    scenario = SCENARIOS[name]
    count = scenario.minutes if minutes is None else minutes
    rng = random.Random(seed)  # noqa: S311 - reproducible scenario noise, not cryptography
    base = float(start_price)
    sigma = scenario.noise / math.sqrt(SUBSTEPS)
    deviation = 0.0
    t0 = ms_of(start)
    close = to_half_ticks(start_price)
    rows = []
    for minute in range(count):
        open_ = close
        high = low = open_
        for step in range(1, SUBSTEPS + 1):
            deviation = deviation * 0.97 + rng.gauss(0.0, sigma)
            target = scenario.shape(minute + step / SUBSTEPS)
            price = max(round(base * target * math.exp(deviation) * 2), 2)
            high = max(high, price)
            low = min(low, price)
            close = price
        rows.append((t0 + minute * MINUTE_MS, open_, high, low, close))
    return build("candles", MINUTE_MS, rows)
