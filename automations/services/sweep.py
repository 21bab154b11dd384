"""Periodic work: the evaluation sweep (catches anything a tick missed), the reconciliation fan-out and the intent
sweep (re-queues intents whose delivery was lost)."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from accounts.models import ExchangeAccount
from automations.exchange import public_client
from automations.models import Automation, OrderIntent
from automations.outliers import OutlierGate
from automations.services.evaluation import automations_evaluate_network, market_from_ticker
from automations.services.execution import ENTRY_TTL, EXPIRED, reject_unsent
from automations.services.trades import intents_due
from lnmarkets.exceptions import LNMarketsError

logger = logging.getLogger(__name__)


def automations_sweep(*, now: datetime) -> int:
    """Evaluate all active automations, per network, on the ticker fetched now; returns intents created."""
    networks = set(
        Automation.objects.filter(status=Automation.Status.ACTIVE, account__is_enabled=True).values_list(
            "account__network", flat=True
        )
    )
    created = 0
    for network in sorted(networks):
        try:
            ticker = public_client(network).futures_ticker_get()
        except LNMarketsError as exc:
            logger.warning("sweep: no ticker for %s (%s)", network, exc.code)
            continue
        market = market_from_ticker(ticker)
        if market is not None and OutlierGate().is_outlier(market.last_price, market.index, market.time):
            logger.warning(
                "sweep: %s last price %s is an outlier against its index %s", network, market.last_price, market.index
            )
            continue
        if market is not None:
            created += len(automations_evaluate_network(network=network, market=market, now=now))
    return created


def accounts_reconcile_fanout() -> int:
    """Queue a reconciliation per enabled account not waiting out a credential backoff; returns how many."""
    from automations.tasks import account_reconcile_task

    now = timezone.now()
    due = Q(auth_retry_at__isnull=True) | Q(auth_retry_at__lte=now)
    account_ids = list(ExchangeAccount.objects.filter(due, is_enabled=True).values_list("pk", flat=True))
    for account_id in account_ids:
        account_reconcile_task.delay(account_id)
    return len(account_ids)


def intents_sweep(*, now: datetime) -> int:
    """Expire entries that waited too long to be sent; re-queue every unfinished intent whose lease ran out (a
    lost retry, a lost message, a worker that died). Returns how many were re-queued."""
    from automations.tasks import order_intents_enqueue

    stale = OrderIntent.objects.select_related("automation").filter(
        state=OrderIntent.State.CREATED, protective=False, created_at__lt=now - ENTRY_TTL
    )
    expired = sum(reject_unsent(intent, EXPIRED) for intent in stale)
    if expired:
        logger.info("%d entry intents expired unsent", expired)
    due = intents_due(now=now)
    order_intents_enqueue(due)  # in batches, protective ones first (many after an outage)
    return len(due)
