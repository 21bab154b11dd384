"""Credentials the exchange rejects: pause the account's automations visibly and back off (issue #12, item 10).

Contract (docs/exactly-once.md: an account whose credentials fail to decrypt or are rejected by
the exchange pauses its automations with a visible error):

* ``record_auth_failure`` (the reconcile task calls it on ``AuthError`` or ``CredentialDecryptionError``): counts the
  failure, sets ``auth_retry_at`` ``backoff_for(n)`` ahead (5 min, 10, 20 … capped at 6 h), moves the account's
  active automations to ``error`` with a message that says what to do, writes one audit entry and tells the
  dashboard. Nothing else is sent to the exchange for that account until ``auth_retry_at``.
* ``may_reconcile_now``: the fan-out and the task skip an account still inside its backoff.
* ``record_auth_success`` (after a reconciliation that worked): clears the backoff and resumes the automations that
  ``record_auth_failure`` paused (those whose message starts with ``PAUSE_PREFIX``); others stay as they are.
* New keys saved by the user (``accounts.services.exchange_account_update``) clear the backoff too, so the next
  reconciliation tries them at once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from accounts.models import ExchangeAccount
from automations.audit_text import say
from automations.models import AuditEntry, Automation
from automations.publish import publish_automation_log_on_commit, publish_automations_changed_on_commit

logger = logging.getLogger(__name__)

BASE_BACKOFF = timedelta(minutes=5)
MAX_BACKOFF = timedelta(hours=6)
PAUSE_PREFIX = "Paused: the exchange rejected this account's credentials"


def backoff_for(failures: int) -> timedelta:
    """The wait after the ``failures``-th rejection in a row: 5 min doubling per failure, at most 6 h."""
    if failures <= 1:
        return BASE_BACKOFF
    doubled: timedelta = BASE_BACKOFF * (2 ** min(failures - 1, 16))
    return min(MAX_BACKOFF, doubled)


def may_reconcile_now(account: ExchangeAccount, now: datetime | None = None) -> bool:
    """False while the account waits out a credential backoff."""
    return account.auth_retry_at is None or account.auth_retry_at <= (now or timezone.now())


def record_auth_failure(*, account_id: int, reason: str, now: datetime | None = None) -> datetime | None:
    """Record a rejection of ``account_id``'s credentials (``reason``: the error's class name, never its text);
    returns the time before which the account is not reconciled again (``None``: the account is gone)."""
    now = now or timezone.now()
    with transaction.atomic():
        account = ExchangeAccount.objects.select_for_update().filter(pk=account_id).first()
        if account is None:
            return None
        failures = account.auth_failures + 1
        retry_at = now + backoff_for(failures)
        ExchangeAccount.objects.filter(pk=account_id).update(
            auth_failures=failures, auth_failed_at=now, auth_retry_at=retry_at
        )
        message = (
            f"{PAUSE_PREFIX} ({reason}). Enter working API keys on the account page; "
            f"Axisor tries again at {retry_at:%Y-%m-%d %H:%M} UTC and resumes these automations if they work."
        )
        paused = Automation.objects.filter(account_id=account_id, status=Automation.Status.ACTIVE).update(
            status=Automation.Status.ERROR, status_message=message[:300]
        )
        if failures == 1 or paused:
            said = say("credentials_paused", reason=reason, retry_at=f"{retry_at:%Y-%m-%d %H:%M}", paused=paused)
            entry = AuditEntry.objects.create(
                account_id=account_id,
                event=AuditEntry.Event.ERROR,
                outcome=AuditEntry.Outcome.ERROR,
                message=said.english,
                inputs=said.inputs(),
            )
            publish_automation_log_on_commit(entry.pk)
        if paused:
            publish_automations_changed_on_commit(account_id)
    logger.warning(
        "credentials of account %s rejected (%s, %d in a row): %d automation(s) paused, next try in %s",
        account_id,
        reason,
        failures,
        paused,
        backoff_for(failures),
    )
    return retry_at


def record_auth_success(*, account_id: int) -> int:
    """The credentials worked: clear the backoff and resume what ``record_auth_failure`` paused; returns how many
    automations were resumed."""
    with transaction.atomic():
        cleared = ExchangeAccount.objects.filter(pk=account_id, auth_failures__gt=0).update(
            auth_failures=0, auth_retry_at=None
        )
        if not cleared:
            return 0
        resumed = Automation.objects.filter(
            account_id=account_id, status=Automation.Status.ERROR, status_message__startswith=PAUSE_PREFIX
        ).update(status=Automation.Status.ACTIVE, status_message="")
        said = say("credentials_accepted", resumed=resumed)
        entry = AuditEntry.objects.create(
            account_id=account_id,
            event=AuditEntry.Event.STATUS,
            outcome=AuditEntry.Outcome.INFO,
            message=said.english,
            inputs=said.inputs(),
        )
        publish_automation_log_on_commit(entry.pk)
        if resumed:
            publish_automations_changed_on_commit(account_id)
    logger.info("credentials of account %s accepted again: %d automation(s) resumed", account_id, resumed)
    return resumed
