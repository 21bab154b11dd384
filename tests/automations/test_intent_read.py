"""automations.services.intent_read: the delivery's compiled statements read and lease exactly what the ORM would."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import F, Model
from django.utils import timezone

from accounts.models import ExchangeAccount, User
from automations.models import OrderIntent
from automations.services.intent_read import intent_lease, intent_with_account_and_automation
from tests.automations.conftest import margin_guard


def _fields(row: Model) -> dict[str, Any]:
    return {f.attname: getattr(row, f.attname) for f in type(row)._meta.concrete_fields}


def _orm(pk: int) -> OrderIntent:
    return OrderIntent.objects.select_related("account", "automation").get(pk=pk)


def _assert_same(read: OrderIntent | None, pk: int) -> None:
    expected = _orm(pk)
    assert read is not None
    assert _fields(read) == _fields(expected)
    assert _fields(read.account) == _fields(expected.account)
    if expected.automation is None:
        assert read.automation is None
    else:
        assert read.automation is not None
        assert _fields(read.automation) == _fields(expected.automation)
    assert not read._state.adding
    assert read._state.db == expected._state.db


@pytest.mark.django_db
def test_an_intent_of_an_automation_reads_as_the_orm_reads_it(
    alice: User, make_account: Callable[..., ExchangeAccount], django_assert_num_queries: Any
) -> None:
    account = make_account(alice)
    guard = margin_guard(account)
    guard.memory = {"v": 1, "trades": {"t-1": {"last_action_at": "2026-12-07T10:00:00+00:00"}}}
    guard.last_evaluated_at = timezone.now()
    guard.save()
    now = timezone.now()
    intent = OrderIntent.objects.create(
        account=account,
        automation=guard,
        action="close",
        trade_id="t-1",
        params={"reopen": None, "note": "é"},
        result={"id": "t-1", "wire": '{"a": 1}'},
        state="submitting",
        attempts=2,
        send_deadline=now,
        fence_at=now + timedelta(seconds=30),
    )
    with django_assert_num_queries(1):
        read = intent_with_account_and_automation(intent.pk)
    _assert_same(read, intent.pk)
    assert read is not None
    with django_assert_num_queries(0):  # the relations are in hand, as with select_related
        assert read.account.owner_id == alice.pk
        assert read.automation is not None
        assert read.automation.memory["trades"]["t-1"]["last_action_at"] == "2026-12-07T10:00:00+00:00"


@pytest.mark.django_db
def test_an_intent_without_automation_reads_with_none(
    alice: User, make_account: Callable[..., ExchangeAccount], django_assert_num_queries: Any
) -> None:
    account = make_account(alice)
    intent = OrderIntent.objects.create(account=account, action="close", trade_id="t-2", params={"source": "cockpit"})
    with django_assert_num_queries(1):
        read = intent_with_account_and_automation(intent.pk)
        assert read is not None
        assert read.automation is None
    _assert_same(read, intent.pk)


@pytest.mark.django_db
def test_a_gone_intent_reads_as_none() -> None:
    assert intent_with_account_and_automation(987654) is None
    assert not intent_lease(987654, timezone.now())


@pytest.mark.django_db
def test_the_lease_counts_a_delivery_of_a_live_intent_only(
    alice: User, make_account: Callable[..., ExchangeAccount]
) -> None:
    account = make_account(alice)
    live = OrderIntent.objects.create(account=account, action="close", trade_id="t-3", state="unknown")
    OrderIntent.objects.filter(pk=live.pk).update(deliveries=F("deliveries") + 4)
    until = timezone.now() + timedelta(seconds=60)
    assert intent_lease(live.pk, until)
    live.refresh_from_db()
    assert (live.deliveries, live.next_check_at) == (5, until)
    for state in OrderIntent.TERMINAL:
        done = OrderIntent.objects.create(account=account, action="close", trade_id=f"t-{state}", state=state)
        assert not intent_lease(done.pk, until)
        done.refresh_from_db()
        assert (done.deliveries, done.next_check_at) == (0, None)
