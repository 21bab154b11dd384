"""The Celery application. Its settings live in `config.settings` under the `CELERY_` namespace."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("axisor")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _beat_schedule(sender: Celery, **kwargs: object) -> None:
    """The beat schedule lives in code (``automations.tasks.beat_schedule``)."""
    from automations.tasks import beat_schedule

    sender.conf.beat_schedule = beat_schedule()
