"""Configuration of the LN Markets simulator (plain dataclasses, no Django)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

TriggerMode = Literal["worse", "last", "quote"]
ExitMode = Literal["level", "market"]


@dataclass(frozen=True)
class BucketSpec:
    """One size bucket of the volume ladder: quotes are ``last ± half_spread_ticks × 0.5`` (§9.8, [U])."""

    min_size: int
    max_size: int
    half_spread_ticks: int


DEFAULT_BUCKETS: tuple[BucketSpec, ...] = (
    BucketSpec(1, 10_000, 0),
    BucketSpec(10_001, 100_000, 1),
    BucketSpec(100_001, 250_000, 3),
    BucketSpec(250_001, 500_000, 6),
)


@dataclass(frozen=True)
class SimulatorConfig:
    """Everything that can be chosen when the simulator starts. See README.md for what each [U] option means."""

    host: str = "127.0.0.1"
    port: int = 0
    seed: int | None = None
    price: Decimal = Decimal("100000")
    control_token: str | None = None
    rate_limits: bool = True
    tick_interval: float = 1.0
    auto_tick: bool = True
    state_file: str | None = None
    # Prices
    candles_file: str | None = None
    # Days of 1-minute price history made up at start (a seeded walk ending at ``price``) so the OHLC endpoint has
    # history on a fresh simulator; a state file's recorded candles replace it. 0 = none (tests, benchmarks).
    history_days: int = 0
    annual_volatility: Decimal = Decimal("0.6")
    index_spread: Decimal = Decimal("0.0002")
    buckets: tuple[BucketSpec, ...] = DEFAULT_BUCKETS
    # Exchange rules
    timestamp_window_ms: int = 30_000
    auth_rps: int = 5
    public_rps: int = 1
    stream_msgs_per_s: int = 10
    trigger_mode: TriggerMode = "worse"
    exit_mode: ExitMode = "level"
    funding_rate: Decimal = Decimal("0.0001")
    funding_hours: tuple[int, ...] = (0, 8, 16)
    max_trades: int = 100
    max_quantity: int = 500_000
    max_account_quantity: int = 10_000_000
    stream_queue_size: int = 10_000
