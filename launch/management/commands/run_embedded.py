"""Run the whole product in one process (the embedded default): web + WebSocket server and the services it needs.

``make run`` calls this after migrating. See ``config/embedded.py`` for what is started.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Start Axisor's embedded default: Daphne on HOST:PORT, the simulator, the worker and the scheduler."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, **options: Any) -> None:  # noqa: ANN401
        from config.embedded import run

        def say(text: str) -> None:
            self.stdout.write(text)
            self.stdout.flush()

        run(host=options["host"], port=options["port"], say=say)
