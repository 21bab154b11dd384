"""Item 10: an account whose credentials the exchange rejects pauses its automations visibly and is retried with a
long exponential backoff, not every reconcile interval."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts import services
from accounts.models import ExchangeAccount, User
from automations.models import AuditEntry, Automation
from automations.services.credentials_health import (
    BASE_BACKOFF,
    MAX_BACKOFF,
    PAUSE_PREFIX,
    backoff_for,
    may_reconcile_now,
    record_auth_failure,
    record_auth_success,
)

pytestmark = pytest.mark.django_db


def _automation(account: ExchangeAccount, name: str, status: str = Automation.Status.ACTIVE) -> Automation:
    return Automation.objects.create(account=account, name=name, kind="margin_guard", config={}, status=status)


@pytest.fixture
def account(alice: User, make_account: Any) -> ExchangeAccount:  # noqa: ANN401
    made: ExchangeAccount = make_account(alice, label="main")
    return made


def test_backoff_doubles_from_5_minutes_to_a_6_hour_cap() -> None:
    assert backoff_for(1) == BASE_BACKOFF == timedelta(minutes=5)
    assert backoff_for(2) == timedelta(minutes=10)
    assert backoff_for(4) == timedelta(minutes=40)
    assert backoff_for(10) == MAX_BACKOFF == timedelta(hours=6)
    assert backoff_for(10_000) == MAX_BACKOFF
    assert all(backoff_for(n) <= backoff_for(n + 1) for n in range(1, 40))


def test_a_rejection_pauses_active_automations_with_a_visible_error(account: ExchangeAccount) -> None:
    active = _automation(account, "guard")
    paused_by_user = _automation(account, "paused", Automation.Status.PAUSED)
    now = timezone.now()
    retry_at = record_auth_failure(account_id=account.pk, reason="AuthError", now=now)
    assert retry_at == now + BASE_BACKOFF
    active.refresh_from_db()
    paused_by_user.refresh_from_db()
    assert active.status == Automation.Status.ERROR
    assert active.status_message.startswith(PAUSE_PREFIX)
    assert "AuthError" in active.status_message
    assert paused_by_user.status == Automation.Status.PAUSED  # the user's own pause is left alone
    entry = AuditEntry.objects.get(account=account, event=AuditEntry.Event.ERROR)
    assert "1 automation(s) paused" in entry.message
    account.refresh_from_db()
    assert (account.auth_failures, account.auth_retry_at) == (1, retry_at)


def test_no_reconciliation_inside_the_backoff_and_the_backoff_grows(account: ExchangeAccount) -> None:
    now = timezone.now()
    assert may_reconcile_now(account, now)
    record_auth_failure(account_id=account.pk, reason="AuthError", now=now)
    account.refresh_from_db()
    assert not may_reconcile_now(account, now + timedelta(seconds=30))  # the next beat (30 s) is skipped
    assert not may_reconcile_now(account, now + BASE_BACKOFF - timedelta(seconds=1))
    assert may_reconcile_now(account, now + BASE_BACKOFF)
    later = now + BASE_BACKOFF
    second = record_auth_failure(account_id=account.pk, reason="AuthError", now=later)
    assert second == later + timedelta(minutes=10)


def test_27_rejections_in_25_seconds_become_one_attempt(account: ExchangeAccount) -> None:
    """The issue's 27 AuthErrors in 25 s: with the gate, one call reaches the exchange in that window."""
    start = timezone.now()
    calls = 0
    for i in range(27):
        now = start + timedelta(seconds=i)
        account.refresh_from_db()
        if may_reconcile_now(account, now):
            calls += 1
            record_auth_failure(account_id=account.pk, reason="AuthError", now=now)
    assert calls == 1
    assert AuditEntry.objects.filter(account=account, event=AuditEntry.Event.ERROR).count() == 1


def test_success_clears_the_backoff_and_resumes_only_what_it_paused(account: ExchangeAccount) -> None:
    guard = _automation(account, "guard")
    broken = _automation(account, "broken", Automation.Status.ERROR)
    Automation.objects.filter(pk=broken.pk).update(status_message="Invalid config")
    record_auth_failure(account_id=account.pk, reason="AuthError")
    assert record_auth_success(account_id=account.pk) == 1
    guard.refresh_from_db()
    broken.refresh_from_db()
    assert (guard.status, guard.status_message) == (Automation.Status.ACTIVE, "")
    assert broken.status == Automation.Status.ERROR
    account.refresh_from_db()
    assert (account.auth_failures, account.auth_retry_at) == (0, None)
    assert record_auth_success(account_id=account.pk) == 0  # nothing to clear: no write, no audit entry


def test_new_keys_end_the_backoff(account: ExchangeAccount) -> None:
    record_auth_failure(account_id=account.pk, reason="AuthError")
    account.refresh_from_db()
    services.exchange_account_update(
        account=account, label="main", network="simulator", api_key="k-2", api_secret="s-2", passphrase="p-2"
    )
    account.refresh_from_db()
    assert account.auth_retry_at is None
    assert may_reconcile_now(account)


def test_a_deleted_account_is_ignored(db: None) -> None:
    assert record_auth_failure(account_id=987_654, reason="AuthError") is None


def test_the_account_page_shows_the_rejection(alice: User, account: ExchangeAccount) -> None:
    record_auth_failure(account_id=account.pk, reason="AuthError")
    client = Client()
    client.force_login(alice)
    assert b"The exchange rejected these credentials" in client.get("/accounts/exchange/").content
