"""Celery tasks of the history app: thin wrappers around ``history.services`` (arguments are ids, never secrets)."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.app.task import Task
from django.conf import settings

logger = logging.getLogger(__name__)
SYNC_TASK = "history.tasks.history_sync_all_task"


@shared_task(acks_late=True, max_retries=0)
def history_sync_all_task() -> int:
    """Periodic: one history sync per enabled account whose credentials were not rejected lately."""
    from accounts.models import ExchangeAccount
    from automations.services.credentials_health import may_reconcile_now

    count = 0
    for account in ExchangeAccount.objects.filter(is_enabled=True):
        if may_reconcile_now(account):
            history_sync_task.delay(account.pk)
            count += 1
    return count


@shared_task(bind=True, acks_late=True, max_retries=3)
def history_sync_task(self: Task[[int], None], account_id: int) -> None:
    """Copy one account's closed trades and balance from the exchange (GETs only: any redelivery is harmless)."""
    from accounts.crypto import CredentialDecryptionError
    from automations.tasks import safe_countdown
    from history.services import history_sync
    from lnmarkets.exceptions import AuthError, PermanentError, TemporaryError

    try:
        history_sync(account_id=account_id)
    except TemporaryError as exc:
        raise self.retry(countdown=safe_countdown(min(2**self.request.retries, 8)), exc=exc) from exc
    except (AuthError, CredentialDecryptionError, PermanentError) as exc:
        logger.warning("history sync of account %s failed: %s", account_id, type(exc).__name__)


def beat_entries() -> dict[str, dict[str, object]]:
    """The history sync's Celery beat entry (merged into the schedule by ``config.celery``)."""
    every = float(getattr(settings, "HISTORY_SYNC_SECONDS", 60))
    return {"history-sync": {"task": SYNC_TASK, "schedule": every, "options": {"expires": every}}}
