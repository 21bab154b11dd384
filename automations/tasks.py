"""Celery tasks: thin wrappers around the services (house rule 6, docs/architecture.md). Arguments are ids, never
secrets.

Order tasks run with late ack and reject-on-worker-lost (settings), so a worker killed mid-task leaves the message
to be redelivered; ``order_intent_execute`` is idempotent under any redelivery (docs/exactly-once.md). Every
countdown goes through ``safe_countdown``: a countdown at or past the broker's visibility timeout would be
redelivered again and again (docs/reliability.md §2, T09; a test checks every call site).

Periodic tasks run once per schedule slot even when two beats dispatch them (T08): the first execution of a slot
takes it with an atomic ``cache.add``; a duplicate finds it taken and does nothing.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from celery import shared_task
from celery.app.task import Task
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from kombu import Producer

from axisor_bus.side_by_side import batches

logger = logging.getLogger(__name__)

PROTECTIVE_QUEUE = "protective"
DEFAULT_QUEUE = "celery"
ENTRY_EXPIRES_S = 60
PROTECTIVE_EXPIRES_S = 600


def safe_countdown(seconds: float) -> float:
    """``seconds``, capped at half the broker's visibility timeout (a countdown at or past it loops)."""
    return max(0.0, min(float(seconds), settings.CELERY_VISIBILITY_TIMEOUT / 2))


def _route(protective: bool) -> dict[str, Any]:
    """Where an intent's delivery is queued: protective work on its own queue (served first), entries expiring
    after 60 s."""
    if protective:
        return {"queue": PROTECTIVE_QUEUE, "expires": PROTECTIVE_EXPIRES_S}
    return {"queue": DEFAULT_QUEUE, "expires": ENTRY_EXPIRES_S}


def order_intent_enqueue(
    intent_id: int, *, protective: bool | None = None, countdown: float = 0, producer: Producer | None = None
) -> None:
    """Queue one intent (``_route``)."""
    if protective is None:
        from automations.models import OrderIntent

        protective = OrderIntent.objects.filter(pk=intent_id, protective=True).exists()
    order_intent_execute_task.apply_async(
        args=(intent_id,), countdown=safe_countdown(countdown), producer=producer, **_route(protective)
    )


def order_intents_enqueue(intents: list[tuple[int, bool]]) -> None:
    """Queue several (id, protective) intents through one broker producer, protective ones first, in batches of
    ``settings.DELIVERY_BATCH`` (one message delivers them side by side, ``settings.DELIVERY_THREADS`` at a time:
    ``services.delivery_batch``)."""
    if not intents:
        return
    with order_intent_execute_task.app.producer_or_acquire() as producer:
        for protective in (True, False):
            chosen = [intent_id for intent_id, kind in intents if kind is protective]
            for chunk in batches(chosen, settings.DELIVERY_BATCH):
                if len(chunk) == 1:
                    order_intent_enqueue(chunk[0], protective=protective, producer=producer)
                    continue
                order_intents_execute_task.apply_async(
                    args=(chunk, protective), producer=producer, **_route(protective)
                )


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def order_intent_execute_task(self: Task[[int], None], intent_id: int) -> None:
    """Advance one order intent (``automations.services.execution``); the intent bounds its own retries."""
    from automations.services.execution import RetryLaterError, order_intent_execute

    try:
        followups = order_intent_execute(intent_id=intent_id)
    except RetryLaterError as exc:
        raise self.retry(countdown=safe_countdown(exc.countdown), exc=exc) from exc
    for followup in followups:
        order_intent_enqueue(followup)


@shared_task(acks_late=True, reject_on_worker_lost=True, max_retries=0)
def order_intents_execute_task(intent_ids: list[int], protective: bool) -> None:
    """Advance several intents of one kind side by side (``automations.services.delivery_batch``); each one that
    must be looked at again is queued on its own after its countdown, as ``order_intent_execute_task`` retries."""
    from automations.services.delivery_batch import BatchDeliveryError, order_intents_execute

    outcome = order_intents_execute(intent_ids, threads=settings.DELIVERY_THREADS)
    for intent_id, countdown in outcome.retries:
        order_intent_enqueue(intent_id, protective=protective, countdown=safe_countdown(countdown))
    for followup in outcome.followups:
        order_intent_enqueue(followup)
    if outcome.failed:
        raise BatchDeliveryError(f"the deliveries of intents {outcome.failed} raised; their leases bring them back")


def _first_in_slot(name: str, interval: float) -> bool:
    """True for the first execution of ``name`` in the current ``interval``-second slot (wall clock)."""
    slot = math.floor(time.time() / interval)
    first = bool(cache.add(f"axisor:periodic:{name}:{slot}", 1, timeout=max(int(interval * 3), 1)))
    logger.info("periodic %s slot %d: %s", name, slot, "runs" if first else "already run, skipped")
    return first


@shared_task(acks_late=True, max_retries=0)
def automations_sweep_task() -> int:
    """Periodic catch-up: evaluate every active automation on a freshly fetched ticker, per network in use."""
    from automations.services.sweep import automations_sweep

    if not _first_in_slot("automations-sweep", settings.AUTOMATION_SWEEP_SECONDS):
        return 0
    return automations_sweep(now=timezone.now())


@shared_task(acks_late=True, max_retries=0)
def accounts_reconcile_task() -> int:
    """Periodic: fan out one reconciliation per enabled account."""
    from automations.services.sweep import accounts_reconcile_fanout

    if not _first_in_slot("accounts-reconcile", settings.RECONCILE_SECONDS):
        return 0
    return accounts_reconcile_fanout()


@shared_task(acks_late=True, max_retries=0)
def intents_sweep_task() -> int:
    """Periodic: re-queue unfinished intents whose lease ran out; expire entries that waited too long."""
    from automations.services.sweep import intents_sweep

    if not _first_in_slot("intents-sweep", settings.INTENT_SWEEP_SECONDS):
        return 0
    return intents_sweep(now=timezone.now())


@shared_task(bind=True, acks_late=True, max_retries=3)
def account_reconcile_task(self: Task[[int], None], account_id: int) -> None:
    """Reconcile one account's tracked trades and balance with the exchange (GETs only). Rejected credentials
    pause the account's automations and back off for minutes to hours (``credentials_health``)."""
    from accounts.crypto import CredentialDecryptionError
    from accounts.models import ExchangeAccount
    from automations.services.credentials_health import may_reconcile_now, record_auth_failure, record_auth_success
    from automations.services.trades import account_reconcile
    from lnmarkets.exceptions import AuthError, PermanentError, TemporaryError

    account = ExchangeAccount.objects.filter(pk=account_id).first()
    if account is None or not may_reconcile_now(account):
        return
    try:
        account_reconcile(account_id=account_id)
    except TemporaryError as exc:
        raise self.retry(countdown=safe_countdown(min(2**self.request.retries, 8)), exc=exc) from exc
    except (AuthError, CredentialDecryptionError) as exc:
        record_auth_failure(account_id=account_id, reason=type(exc).__name__)
    except PermanentError as exc:
        logger.warning("reconciliation of account %s failed: %s", account_id, type(exc).__name__)
    else:
        record_auth_success(account_id=account_id)


def beat_schedule() -> dict[str, dict[str, object]]:
    """Celery beat entries (kept in code; data decides what is due)."""
    return {
        name: {
            "task": f"automations.tasks.{task}",
            "schedule": float(seconds),
            "options": {"expires": float(seconds)},
        }
        for name, task, seconds in (
            ("automations-sweep", "automations_sweep_task", settings.AUTOMATION_SWEEP_SECONDS),
            ("accounts-reconcile", "accounts_reconcile_task", settings.RECONCILE_SECONDS),
            ("intents-sweep", "intents_sweep_task", settings.INTENT_SWEEP_SECONDS),
        )
    }
