"""The feed process (production: its own process beside Daphne, workers and beat): start-up reconciliation, then the
market feed, the tick runner, the dashboards' market publisher and the private trade streams until stopped."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from accounts.models import Network


class Command(BaseCommand):
    help = (
        "Reconcile every account, then act on each market tick, fan ticks out to dashboards and apply each "
        "account's own exchange events until stopped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--network", action="append", choices=[n.value for n in Network], default=None)

    def handle(self, *args: Any, **options: Any) -> None:  # noqa: ANN401
        from automations.services.startup import accounts_reconcile_at_startup
        from launch.feed_process import feed_process_start

        counts = accounts_reconcile_at_startup()
        self.stdout.write(f"start-up reconciliation: {counts}")
        stops = feed_process_start(options["network"] or [n.value for n in Network])
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        stop.wait()
        for stop_one in reversed(stops):
            stop_one()
