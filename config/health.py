"""The worker heartbeat that /readyz reads: a beat-scheduled task any worker runs, writing the time to the cache.

The cache is Redis in production (every process reads the same key) and local memory in the embedded default,
where the worker is a thread of the one process. A worker also beats once when it starts (``worker_ready``), so
/readyz does not wait a full interval after a start. The value is an aware UTC ISO timestamp.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

logger = logging.getLogger(__name__)

HEARTBEAT_KEY = "ops:worker_heartbeat"
HEARTBEAT_TASK = "config.health.worker_heartbeat_task"
_KEEP_S = 24 * 3600


def heartbeat_beat() -> None:
    """Record that a worker is alive now."""
    cache.set(HEARTBEAT_KEY, timezone.now().isoformat(), _KEEP_S)


def heartbeat_age_s(now: datetime | None = None) -> float | None:
    """Seconds since the last worker heartbeat (``None``: never, or unreadable)."""
    raw = cache.get(HEARTBEAT_KEY)
    if not isinstance(raw, str):
        return None
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        logger.warning("unreadable worker heartbeat in %s", HEARTBEAT_KEY)
        return None
    return max(0.0, ((now or timezone.now()) - at).total_seconds())


@shared_task(name=HEARTBEAT_TASK, ignore_result=True)
def worker_heartbeat_task() -> None:
    """Beat-scheduled: proves a worker takes tasks from the default queue."""
    heartbeat_beat()


def beat_entries() -> dict[str, dict[str, object]]:
    """The heartbeat's Celery beat entry (merged into the schedule by ``config.celery``)."""
    every = float(settings.WORKER_HEARTBEAT_SECONDS)
    return {"worker-heartbeat": {"task": HEARTBEAT_TASK, "schedule": every, "options": {"expires": every}}}


@worker_ready.connect
def _beat_on_start(sender: Any = None, **kwargs: Any) -> None:  # noqa: ANN401 - Celery signal signature
    heartbeat_beat()
