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
from axisor_bus.side_by_side import batches, run_side_by_side, send_or_hold

logger = logging.getLogger(__name__)

NOTIFY_QUEUE = "notify"


class NotificationsBatchError(Exception):
    """Some notifications of a batch raised; the others were delivered."""


def notifications_enqueue(notification_ids: list[int], *, countdown: float = 0) -> None:
    """Queue the delivery of ``notification_ids``: now ones in batches of ``settings.DELIVERY_BATCH`` (held to
    the end of an enclosing batch of order deliveries, whose closes queue them one by one:
    ``axisor_bus.side_by_side``), later ones each on its own. The batch is the order batches' size: a worker takes
    its queues in turn, so a batch of closes and the batch of their notifications leave at the same pace (with half
    the size the notifications fell behind while the closes went on: ``bench/notify.py``'s p99 4.7 s)."""
    if countdown > 0:
        for notification_id in notification_ids:
            notification_deliver_task.apply_async(
                args=(notification_id,), queue=NOTIFY_QUEUE, countdown=safe_countdown(countdown)
            )
        return
    send_or_hold(_send_batches, notification_ids)


def _send_batches(notification_ids: list[int]) -> None:
    for chunk in batches(notification_ids, settings.DELIVERY_BATCH):
        if len(chunk) == 1:
            notification_deliver_task.apply_async(args=(chunk[0],), queue=NOTIFY_QUEUE)
        else:
            notifications_deliver_task.apply_async(args=(chunk,), queue=NOTIFY_QUEUE)


def _deliver(notification_id: int) -> float | None:
    """Deliver one notification; the countdown after which it must be tried again, or None."""
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
        return None
    return outcome.retry_in


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def notification_deliver_task(self: Task[[int], None], notification_id: int) -> None:
    """Deliver one notification; the row bounds its own attempts (``NOTIFY_MAX_ATTEMPTS``)."""
    retry_in = _deliver(notification_id)
    if retry_in is not None:
        raise self.retry(countdown=safe_countdown(retry_in), queue=NOTIFY_QUEUE)


@shared_task(acks_late=True, reject_on_worker_lost=True, max_retries=0)
def notifications_deliver_task(notification_ids: list[int]) -> None:
    """Deliver several notifications side by side (their sends to Telegram, e-mail or webhooks overlap); each that
    must be tried again is queued on its own after its countdown. One that raises is logged and left to the sweep,
    as a single delivery that raised; the task then fails."""
    failed: list[int] = []

    def deliver(notification_id: int) -> None:
        try:
            retry_in = _deliver(notification_id)
        except Exception:
            # Not swallowed: logged with its traceback and the task fails; the row's claim lets the sweep retry it.
            logger.exception("notification %s: its delivery in a batch raised; the sweep retries it", notification_id)
            failed.append(notification_id)
            return
        if retry_in is not None:
            notifications_enqueue([notification_id], countdown=safe_countdown(max(retry_in, 0.5)))

    run_side_by_side(dict.fromkeys(notification_ids), deliver, threads=settings.DELIVERY_THREADS)
    if failed:
        raise NotificationsBatchError(f"the deliveries of notifications {failed} raised; the sweep brings them back")


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
