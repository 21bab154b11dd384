"""Periodic work: the evaluation sweep (catches anything a tick missed) and the reconciliation fan-out."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import ExchangeAccount
from automations.exchange import public_client
from automations.models import Automation, OrderIntent
from automations.services.evaluation import automations_evaluate_network, market_from_ticker
from automations.services.trades import stale_intents_for_account
from lnmarkets.exceptions import LNMarketsError

logger = logging.getLogger(__name__)

STALE_INTENT_AFTER = timedelta(seconds=120)
ENTRY_INTENT_TTL = timedelta(seconds=60)


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
        if market is not None:
            created += len(automations_evaluate_network(network=network, market=market, now=now))
    return created


def accounts_reconcile_fanout() -> int:
    """Queue a reconciliation per enabled account; expire stale entries; re-queue protective intents left behind."""
    from automations.tasks import account_reconcile_task, order_intent_enqueue

    now = timezone.now()
    with transaction.atomic():
        expired = OrderIntent.objects.filter(
            state=OrderIntent.State.CREATED, protective=False, created_at__lt=now - ENTRY_INTENT_TTL
        ).update(state=OrderIntent.State.REJECTED, error="expired before it could be sent", finished_at=now)
    if expired:
        logger.info("%d entry intents expired unsent", expired)
    account_ids = list(ExchangeAccount.objects.filter(is_enabled=True).values_list("pk", flat=True))
    for account_id in account_ids:
        account_reconcile_task.delay(account_id)
        for intent_id in stale_intents_for_account(account_id, older_than=STALE_INTENT_AFTER):
            order_intent_enqueue(intent_id)
    return len(account_ids)
