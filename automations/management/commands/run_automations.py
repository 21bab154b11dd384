"""Run the market feed and act on every tick (production: its own process beside Daphne, workers and beat)."""

from __future__ import annotations

import signal
import threading
from functools import partial
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from accounts.models import Network


class Command(BaseCommand):
    help = "Reconcile every account, then act on each market tick and fan ticks out to dashboards until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--network", action="append", choices=[n.value for n in Network], default=None)

    def handle(self, *args: Any, **options: Any) -> None:  # noqa: ANN401
        from automations.runner import TickRunner
        from automations.services.startup import accounts_reconcile_at_startup
        from lnmarkets.feed import get_market_feed, stop_market_feeds
        from realtime.candles import day_window
        from realtime.market import MarketPublisher

        counts = accounts_reconcile_at_startup()
        self.stdout.write(f"start-up reconciliation: {counts}")
        networks = options["network"] or [n.value for n in Network]
        runners: list[TickRunner | MarketPublisher] = []
        for network in networks:
            feed = get_market_feed(network)
            history = partial(day_window, network)  # the 24 h figures start from the exchange's minute candles
            runners += [TickRunner(feed, network), MarketPublisher(feed, network, max_rate_hz=2, history=history)]
        for runner in runners:
            runner.start()
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        stop.wait()
        for runner in runners:
            runner.stop()
        stop_market_feeds()
