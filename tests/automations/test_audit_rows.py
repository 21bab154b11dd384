"""automations.services.audit_rows: audit entries written by the compiled statement are the rows the ORM writes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db.models import Model
from django.utils import timezone

from accounts.models import ExchangeAccount, User
from automations.models import AuditEntry, OrderIntent
from automations.services.audit_rows import audit_entries_insert
from tests.automations.conftest import margin_guard

pytestmark = pytest.mark.django_db


def _fields(row: Model, *, but: tuple[str, ...] = ()) -> dict[str, Any]:
    return {f.attname: getattr(row, f.attname) for f in type(row)._meta.concrete_fields if f.attname not in but}


def _entries(account: ExchangeAccount, intent: OrderIntent) -> list[AuditEntry]:
    automation = intent.automation
    return [
        AuditEntry(
            account=account,
            automation=automation,
            intent=intent,
            kind="margin_guard",
            event=AuditEntry.Event.ORDER,
            outcome=AuditEntry.Outcome.OK,
            message="accepted — é ' \" \\\\ %s %(x)s",
            inputs={"client_id": "c-1", "nested": {"list": [1, "2", None, True]}, "quote": "it's"},
        ),
        AuditEntry(
            account=account,
            intent=intent,
            event=AuditEntry.Event.RECONCILE,
            outcome=AuditEntry.Outcome.OK,
            message="done",
        ),
    ]


def test_entries_are_written_as_the_orm_writes_them(
    alice: User, make_account: Callable[..., ExchangeAccount], django_assert_num_queries: Any
) -> None:
    account = make_account(alice)
    intent = OrderIntent.objects.create(account=account, automation=margin_guard(account), action="close")
    before = timezone.now()
    ours = _entries(account, intent)
    with django_assert_num_queries(1):
        audit_entries_insert(ours)
    orm = _entries(account, intent)
    AuditEntry.objects.bulk_create(orm)
    for written, reference in zip(ours, orm, strict=True):
        assert written.pk is not None
        assert not written._state.adding
        assert written._state.db == reference._state.db
        assert written.created_at >= before  # set on the instance as auto_now_add sets it
        stored, stored_reference = AuditEntry.objects.get(pk=written.pk), AuditEntry.objects.get(pk=reference.pk)
        assert _fields(stored, but=("id", "created_at")) == _fields(stored_reference, but=("id", "created_at"))
        assert _fields(stored) == _fields(written)  # the instance holds what is stored
    assert ours[0].pk < ours[1].pk  # in order


def test_one_entry_and_none(alice: User, make_account: Callable[..., ExchangeAccount]) -> None:
    account = make_account(alice)
    intent = OrderIntent.objects.create(account=account, action="close")
    entry = _entries(account, intent)[1]
    audit_entries_insert([entry])
    assert AuditEntry.objects.get(pk=entry.pk).message == "done"
    audit_entries_insert([])
    assert AuditEntry.objects.count() == 1
