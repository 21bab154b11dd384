"""The Celery application. Its settings live in `config.settings` under the `CELERY_` namespace."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, Task
from celery.signals import setup_logging, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("axisor")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


# The worker heartbeat task (/readyz) lives in config.health, which is not an app: import it with the apps' tasks.
app.autodiscover_tasks(lambda: ["config"], related_name="health")


@app.on_after_finalize.connect
def _beat_schedule(sender: Celery, **kwargs: object) -> None:
    """The beat schedule lives in code (``automations.tasks.beat_schedule``), plus the worker heartbeat and the
    notification sweep and daily summary (``notifications.tasks.beat_entries``)."""
    from automations.tasks import beat_schedule
    from config.health import beat_entries
    from history.tasks import beat_entries as history_beat_entries
    from notifications.tasks import beat_entries as notification_beat_entries

    sender.conf.beat_schedule = {
        **beat_schedule(),
        **beat_entries(),
        **notification_beat_entries(),
        **history_beat_entries(),
    }


@setup_logging.connect
def _django_logging(**kwargs: object) -> None:
    """Workers and beat log through Django's ``LOGGING`` (secrets in URLs masked, ``LOG_FORMAT=json`` honoured)
    instead of Celery's own handlers."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


@task_prerun.connect
def _connections_back_to_the_pool(task: Task[Any, Any] | None = None, **kwargs: object) -> None:
    """Before each task, as a request does: a connection that broke or outlived ``CONN_MAX_AGE`` is given back (to
    the pool, under PostgreSQL), so no task starts on a dead one; the pool itself stays open
    (``CELERY_DB_REUSE_MAX``: Celery would otherwise close it around every task). Not for a task applied eagerly
    (``.apply()``): it runs inside its caller's transaction, as Celery's own fix-up leaves it."""
    if task is not None and getattr(task.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()
