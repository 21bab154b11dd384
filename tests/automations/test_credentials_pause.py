"""Rejected credentials (issue #12 item 10, wired in the reconcile task and the executor): the account's automations
pause with a visible error, the account backs off instead of hammering the exchange with 401s, and working keys
resume the automations."""

from __future__ import annotations

import pytest

from accounts.models import ExchangeAccount
from automations.models import Automation, OrderIntent
from automations.services.execution import order_intent_execute
from automations.services.sweep import accounts_reconcile_fanout
from automations.tasks import account_reconcile_task
from tests.automations.conftest import margin_guard

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def rejected(alice, sim, sim_network, make_account):
    """An account whose keys the simulator does not know (every signed call answers 401), with an active guard."""
    account = make_account(alice, label="revoked", api_key="unknown-key", api_secret="s", passphrase="p")
    guard = margin_guard(account)
    return account, guard


def _requests(sim, key: str) -> int:
    return len(sim.control.request_log(key))


def test_rejected_credentials_pause_the_automations_and_back_off(rejected, sim):
    account, guard = rejected
    account_reconcile_task.apply(args=(account.pk,))
    guard.refresh_from_db()
    account.refresh_from_db()
    assert guard.status == Automation.Status.ERROR
    assert "API keys" in guard.status_message
    assert account.auth_retry_at is not None
    sent = _requests(sim, "unknown-key")
    assert sent >= 1
    # within the backoff neither the task nor the periodic fan-out asks the exchange again
    for _ in range(5):
        account_reconcile_task.apply(args=(account.pk,))
    assert accounts_reconcile_fanout() == 0
    assert _requests(sim, "unknown-key") == sent


def test_working_keys_resume_what_the_rejection_paused(rejected, sim, sim_account):
    account, guard = rejected
    account_reconcile_task.apply(args=(account.pk,))
    # the user enters working keys (which clears the backoff), the next reconciliation succeeds
    from accounts import services as account_services

    account_services.exchange_account_update(
        account=account,
        label=account.label,
        network=account.network,
        api_key=sim_account.key,
        api_secret=sim_account.secret,
        passphrase=sim_account.passphrase,
        verification=account_services.Verification(permissions=tuple(sim_account.scopes)),
    )
    account_reconcile_task.apply(args=(account.pk,))
    guard.refresh_from_db()
    assert guard.status == Automation.Status.ACTIVE
    assert ExchangeAccount.objects.get(pk=account.pk).auth_retry_at is None


def test_an_order_rejected_for_its_credentials_pauses_the_account_the_same_way(rejected, sim):
    account, guard = rejected
    intent = OrderIntent.objects.create(account=account, action="close", trade_id="t-1", protective=True)
    assert order_intent_execute(intent_id=intent.pk) == []
    intent.refresh_from_db()
    guard.refresh_from_db()
    assert intent.state == OrderIntent.State.REJECTED
    assert "rejected the credentials" in intent.error
    assert guard.status == Automation.Status.ERROR
    assert ExchangeAccount.objects.get(pk=account.pk).auth_retry_at is not None
