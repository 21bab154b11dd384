"""Celery tasks: thin wrappers around the services (style guide rec. 6). Arguments are ids, never secrets.

Order tasks run with late ack and reject-on-worker-lost (settings), so a worker killed mid-task leaves the message
to be redelivered; ``order_intent_execute`` reconciles before it re-sends anything, and counts deliveries.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.app.task import Task
from django.conf import settings
from django.utils import timezone

from automations.locks import LockTimeoutError

logger = logging.getLogger(__name__)

PROTECTIVE_QUEUE = "protective"
DEFAULT_QUEUE = "celery"
ENTRY_EXPIRES_S = 60
PROTECTIVE_EXPIRES_S = 600


def order_intent_enqueue(intent_id: int, *, protective: bool | None = None, countdown: float = 0) -> None:
    """Queue one intent: protective work on its own queue (served first), entries expiring after 60 s."""
    if protective is None:
        from automations.models import OrderIntent

        protective = OrderIntent.objects.filter(pk=intent_id, protective=True).exists()
    order_intent_execute_task.apply_async(
        args=(intent_id,),
        queue=PROTECTIVE_QUEUE if protective else DEFAULT_QUEUE,
        expires=PROTECTIVE_EXPIRES_S if protective else ENTRY_EXPIRES_S,
        countdown=countdown,
    )


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=6)
def order_intent_execute_task(self: Task[[int], None], intent_id: int) -> None:
    """Execute one order intent (see ``automations.services.execution``); retries only provably unsent orders."""
    from automations.services.execution import RetryLaterError, order_intent_execute

    try:
        followups = order_intent_execute(intent_id=intent_id)
    except RetryLaterError as exc:
        raise self.retry(countdown=exc.countdown, exc=exc) from exc
    except LockTimeoutError as exc:
        raise self.retry(countdown=1.0, exc=exc) from exc
    for followup in followups:
        order_intent_enqueue(followup)


@shared_task(acks_late=True, max_retries=0)
def automations_sweep_task() -> int:
    """Periodic catch-up: evaluate every active automation on a freshly fetched ticker, per network in use."""
    from automations.services.sweep import automations_sweep

    return automations_sweep(now=timezone.now())


@shared_task(acks_late=True, max_retries=0)
def accounts_reconcile_task() -> int:
    """Periodic: fan out one reconciliation per enabled account, and re-queue intents a lost task left behind."""
    from automations.services.sweep import accounts_reconcile_fanout

    return accounts_reconcile_fanout()


@shared_task(bind=True, acks_late=True, max_retries=3)
def account_reconcile_task(self: Task[[int], None], account_id: int) -> None:
    """Reconcile one account's tracked trades and balance with the exchange (GETs only)."""
    from accounts.crypto import CredentialDecryptionError
    from automations.services.trades import account_reconcile
    from lnmarkets.exceptions import PermanentError, TemporaryError

    try:
        account_reconcile(account_id=account_id)
    except TemporaryError as exc:
        raise self.retry(countdown=min(2**self.request.retries, 8), exc=exc) from exc
    except (PermanentError, CredentialDecryptionError) as exc:
        logger.warning("reconciliation of account %s failed: %s", account_id, type(exc).__name__)


def beat_schedule() -> dict[str, dict[str, object]]:
    """Celery beat entries (kept in code; data decides what is due)."""
    return {
        "automations-sweep": {
            "task": "automations.tasks.automations_sweep_task",
            "schedule": float(settings.AUTOMATION_SWEEP_SECONDS),
            "options": {"expires": float(settings.AUTOMATION_SWEEP_SECONDS)},
        },
        "accounts-reconcile": {
            "task": "automations.tasks.accounts_reconcile_task",
            "schedule": float(settings.RECONCILE_SECONDS),
            "options": {"expires": float(settings.RECONCILE_SECONDS)},
        },
    }
