"""Celery tasks of notifications, on their own ``notify`` queue (after ``protective`` and ``celery`` in every
worker's ``-Q`` list, so protective orders are served first). Arguments are ids only, never a secret or a text.
Late ack: a worker lost mid-task leaves the message to be redelivered; the claim makes a redelivery harmless."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.app.task import Task
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from automations.tasks import _first_in_slot, safe_countdown

logger = logging.getLogger(__name__)

NOTIFY_QUEUE = "notify"


def notifications_enqueue(notification_ids: list[int], *, countdown: float = 0) -> None:
    for notification_id in notification_ids:
        notification_deliver_task.apply_async(
            args=(notification_id,), queue=NOTIFY_QUEUE, countdown=safe_countdown(countdown)
        )


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def notification_deliver_task(self: Task[[int], None], notification_id: int) -> None:
    """Deliver one notification; the row bounds its own attempts (``NOTIFY_MAX_ATTEMPTS``)."""
    from notifications.delivery import notification_deliver

    outcome = notification_deliver(notification_id=notification_id)
    if outcome.digest_at is not None:
        # Held by the flood rule: one delayed task per channel and window sends the summary (not one per held row:
        # every delayed task a worker reserves widens its prefetch, and protective work would queue behind them).
        # A lost one is caught by the sweep.
        key = f"notifications:digest:{outcome.channel_id}:{outcome.digest_at.timestamp():.0f}"
        if cache.add(key, 1, timeout=600):
            delay = (outcome.digest_at - timezone.now()).total_seconds()
            notifications_enqueue([notification_id], countdown=safe_countdown(max(delay, 0.5)))
        return
    if outcome.retry_in is not None:
        raise self.retry(countdown=safe_countdown(outcome.retry_in), queue=NOTIFY_QUEUE)


@shared_task(acks_late=True, max_retries=0)
def notifications_sweep_task() -> int:
    """Periodic: re-queue rows whose delivery was lost (never enqueued, or its claimant died)."""
    from notifications.delivery import notifications_due

    if not _first_in_slot("notifications-sweep", settings.NOTIFY_SWEEP_SECONDS):
        return 0
    due = notifications_due(now=timezone.now())
    notifications_enqueue(due)
    return len(due)


@shared_task(acks_late=True, max_retries=0)
def notifications_watch_task() -> int:
    """Periodic: the exchange feed's stale/recovered transitions and margin warnings (``notifications.watch``)."""
    from notifications.watch import feed_watch, margin_watch

    if not _first_in_slot("notifications-watch", settings.NOTIFY_WATCH_SECONDS):
        return 0
    now = timezone.now()
    return feed_watch(now=now) + margin_watch(now=now)


@shared_task(acks_late=True, max_retries=0)
def notifications_daily_summary_task() -> int:
    """Periodic (hourly): each user whose daily summary is due gets it once a day (idempotency key per date)."""
    from notifications.summary import daily_summaries_send

    if not _first_in_slot("notifications-daily", 3600):
        return 0
    return daily_summaries_send(now=timezone.now())


def beat_entries() -> dict[str, dict[str, object]]:
    return {
        "notifications-sweep": {
            "task": "notifications.tasks.notifications_sweep_task",
            "schedule": float(settings.NOTIFY_SWEEP_SECONDS),
            "options": {"expires": float(settings.NOTIFY_SWEEP_SECONDS), "queue": NOTIFY_QUEUE},
        },
        "notifications-watch": {
            "task": "notifications.tasks.notifications_watch_task",
            "schedule": float(settings.NOTIFY_WATCH_SECONDS),
            "options": {"expires": float(settings.NOTIFY_WATCH_SECONDS), "queue": NOTIFY_QUEUE},
        },
        "notifications-daily-summary": {
            "task": "notifications.tasks.notifications_daily_summary_task",
            "schedule": 3600.0,
            "options": {"expires": 3600.0, "queue": NOTIFY_QUEUE},
        },
    }
