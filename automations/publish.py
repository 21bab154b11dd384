"""The automations' dashboard events: payloads built here (the producer), sent by the leaf bus ``axisor_bus.publish``.

Each event goes to the account owner's sockets only, after the database commit (the ``*_on_commit`` variants), so a
rolled-back change is never announced. Payload shapes: ``axisor_bus.publish.AccountChangedEvent``,
``AutomationsChangedEvent``, ``AutomationLogEvent`` (``event_seq`` is added by the bus).
"""

from __future__ import annotations

from django.db import transaction

from accounts.models import ExchangeAccount
from automations.models import AuditEntry
from axisor_bus.publish import publish_user_event


def _owner_id(account_id: int) -> int | None:
    return ExchangeAccount.objects.filter(pk=account_id).values_list("owner_id", flat=True).first()


def publish_account_changed(account_id: int, owner_id: int | None = None) -> None:
    """Announce that ``account_id``'s balance or trades changed (to its owner's sockets only; ``owner_id`` when the
    caller has it saves a query)."""
    owner = owner_id if owner_id is not None else _owner_id(account_id)
    if owner is not None:
        publish_user_event(owner, {"type": "account.changed", "account_id": account_id})


def publish_automations_changed(account_id: int) -> None:
    """Announce that an automation of ``account_id`` changed (created, paused, resumed, errored, deleted)."""
    owner = _owner_id(account_id)
    if owner is not None:
        publish_user_event(owner, {"type": "automations.changed", "account_id": account_id})


def publish_automation_log(entry_id: int, account_id: int | None = None, owner_id: int | None = None) -> None:
    """Announce a new audit entry (an automation decision or outcome) to its account owner's sockets (with
    ``account_id`` and ``owner_id`` in hand, without a query)."""
    if account_id is not None and owner_id is not None:
        row: tuple[int, int] | None = (account_id, owner_id)
    else:
        row = AuditEntry.objects.filter(pk=entry_id).values_list("account_id", "account__owner_id").first()
    if row is not None:
        publish_user_event(row[1], {"type": "automation.log", "account_id": row[0], "entry_id": entry_id})


def publish_account_changed_on_commit(account_id: int, owner_id: int | None = None) -> None:
    """``publish_account_changed`` after the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: publish_account_changed(account_id, owner_id))


def publish_automations_changed_on_commit(account_id: int) -> None:
    """``publish_automations_changed`` after the current transaction commits."""
    transaction.on_commit(lambda: publish_automations_changed(account_id))


def publish_automation_log_on_commit(entry_id: int, account_id: int | None = None, owner_id: int | None = None) -> None:
    """``publish_automation_log`` after the current transaction commits."""
    transaction.on_commit(lambda: publish_automation_log(entry_id, account_id, owner_id))
