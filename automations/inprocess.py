"""The embedded default's Celery worker and beat, in threads of the one process (memory:// transport).

Production runs ``celery worker`` and ``celery beat`` as their own processes on Redis; this module is only for the
embedded default, where the in-process transport cannot be shared across processes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from celery import Celery, signals
from celery.beat import EmbeddedService
from celery.worker import WorkController

from automations.tasks import DEFAULT_QUEUE, PROTECTIVE_QUEUE


class _EmbeddedWorker(WorkController):
    """``celery worker``'s own class (``celery.apps.worker.Worker``) tells ``worker_ready`` when it consumes; the
    bare controller does not. Told here too, so what listens (the /readyz heartbeat) works the same embedded."""

    def on_consumer_ready(self, consumer: object) -> None:
        signals.worker_ready.send(sender=consumer)


def start_worker_thread(
    app: Celery, *, loglevel: str = "WARNING", extra_queues: Sequence[str] = ()
) -> Callable[[], None]:
    """Start a one-slot worker consuming the protective queue, the default one, then ``extra_queues`` (lower
    priority, e.g. ``notify``); returns its stop function."""
    worker = _EmbeddedWorker(
        app=app,
        concurrency=1,
        pool="solo",
        hostname="embedded@axisor",
        queues=[PROTECTIVE_QUEUE, DEFAULT_QUEUE, *extra_queues],
        loglevel=loglevel,
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
    )
    thread = threading.Thread(target=worker.start, name="celery-worker", daemon=True)
    thread.start()

    def stop() -> None:
        worker.stop(in_sighandler=False)
        thread.join(10)

    return stop


def start_beat_thread(app: Celery, *, schedule_file: Path) -> Callable[[], None]:
    """Start Celery beat in a thread (its schedule state in ``schedule_file``); returns its stop function."""
    service = EmbeddedService(app, thread=True, schedule_filename=str(schedule_file))
    service.start()  # type: ignore[union-attr]

    def stop() -> None:
        service.stop()

    return stop
