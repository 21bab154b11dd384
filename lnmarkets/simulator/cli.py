"""Command-line options shared by ``python -m lnmarkets.simulator`` and ``manage.py lnm_simulator``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from decimal import Decimal, InvalidOperation

from lnmarkets.simulator.config import SimulatorConfig
from lnmarkets.simulator.server import SimServer


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text}") from exc
    if not value.is_finite() or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number: {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser, host: str = "127.0.0.1", port: int = 8765, token: str = "") -> None:
    parser.add_argument("--host", default=host, help="listen address (loopback)")
    parser.add_argument("--port", type=int, default=port, help="TCP port; 0 picks a free one")
    parser.add_argument("--seed", type=int, default=None, help="random-walk seed")
    parser.add_argument("--price", type=_decimal, default=Decimal("100000"), help="starting price (USD)")
    parser.add_argument("--control-token", default=token or None, help="enables /_sim (Bearer token)")
    parser.add_argument("--no-rate-limits", action="store_true", help="turn the 429 limits off")
    parser.add_argument("--state-file", default=None, help="load/save the exchange state as JSON")
    parser.add_argument("--candles", default=None, help="replay this CSV (time,open,high,low,close,volume)")
    parser.add_argument("--history-days", type=int, default=0, help="days of made-up 1-minute price history at start")
    parser.add_argument("--tick-interval", type=float, default=1.0, help="seconds between automatic ticks")
    parser.add_argument("--volatility", type=_decimal, default=Decimal("0.6"), help="annualised random-walk volatility")
    parser.add_argument("--no-auto-tick", action="store_true", help="start frozen (ticks only via /_sim)")
    parser.add_argument(
        "--timestamp-window-ms", type=int, default=30_000, help="signature timestamp tolerance (LN Markets: 30 s)"
    )


def config_from(options: dict[str, object]) -> SimulatorConfig:
    token = options.get("control_token")
    return SimulatorConfig(
        host=str(options["host"]),
        port=int(str(options["port"])),
        seed=None if options.get("seed") is None else int(str(options["seed"])),
        price=Decimal(str(options["price"])),
        control_token=str(token) if token else None,
        rate_limits=not options.get("no_rate_limits"),
        state_file=str(options["state_file"]) if options.get("state_file") else None,
        candles_file=str(options["candles"]) if options.get("candles") else None,
        history_days=int(str(options.get("history_days") or 0)),
        tick_interval=float(str(options["tick_interval"])),
        annual_volatility=Decimal(str(options["volatility"])),
        auto_tick=not options.get("no_auto_tick"),
        timestamp_window_ms=int(str(options.get("timestamp_window_ms") or 30_000)),
    )


def serve(config: SimulatorConfig) -> None:
    """Run until interrupted (Ctrl-C)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(SimServer(config).serve_forever())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m lnmarkets.simulator", description="Local LN Markets simulator")
    add_arguments(parser)
    serve(config_from(vars(parser.parse_args(argv))))
