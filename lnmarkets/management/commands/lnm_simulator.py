"""``python manage.py lnm_simulator``: run the local LN Markets simulator.

A thin wrapper: the server itself is Django-free (``lnmarkets.simulator``).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from lnmarkets.simulator.cli import add_arguments, config_from, serve


class Command(BaseCommand):
    help = "Run the local LN Markets exchange simulator (REST v3 + Stream v1 + /_sim control) on loopback."

    def add_arguments(self, parser: CommandParser) -> None:
        add_arguments(
            parser,
            host=settings.SIMULATOR_HOST,
            port=settings.SIMULATOR_PORT,
            token=settings.SIMULATOR_CONTROL_TOKEN,
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from config.var_dir import private_umask

        private_umask()  # its --state-file holds the simulated accounts' keys: 0600 (issue #12)
        config = config_from(options)
        self.stdout.write(f"LN Markets simulator on http://{config.host}:{config.port} (Ctrl-C to stop)")
        serve(config)
