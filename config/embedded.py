"""The embedded default in one process: Daphne serves HTTP and WebSockets; helpers run in background threads.

Started by ``manage.py run_embedded`` (``make run``). Production runs the same code as separate processes
(Daphne, Celery workers, Celery beat, the market feed) against PostgreSQL and Redis.
"""

from __future__ import annotations

import logging
from typing import TextIO

logger = logging.getLogger(__name__)


def run(*, host: str, port: int, stdout: TextIO) -> None:
    """Prepare the demo data, start the background services, then serve until interrupted (Ctrl-C)."""
    from daphne.endpoints import build_endpoint_description_strings
    from daphne.server import Server

    from accounts.demo import demo_user_ensure
    from config.asgi import application

    _user, password = demo_user_ensure()
    url = f"http://{host}:{port}/"
    stdout.write(f"\n  Axisor is starting at {url}\n  Demo login: username 'demo', password '{password}'\n\n")
    stdout.flush()
    Server(
        application=application,
        endpoints=build_endpoint_description_strings(host=host, port=port),
        signal_handlers=True,
    ).run()
