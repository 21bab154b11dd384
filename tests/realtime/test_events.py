"""Event payloads: typed, JSON round-trippable, ids and display fields only, published after the commit."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, get_type_hints

import pytest
from django.db import transaction

from accounts.models import ExchangeAccount, User
from automations import publish as events
from automations.models import AuditEntry
from axisor_bus import publish as bus
from tests.realtime.conftest import capture_group_sends

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    capture_group_sends(monkeypatch, out)
    return out


def _check(message: dict[str, Any], typed: type) -> None:
    assert set(message) == set(get_type_hints(typed))
    assert json.loads(json.dumps(message)) == message


def test_payloads_match_their_typeddicts(
    captured: list[tuple[str, dict[str, Any]]], alice: User, make_account: Callable[..., ExchangeAccount]
) -> None:
    account = make_account(alice)
    entry = AuditEntry.objects.create(account=account, event="decision", outcome="ok", message="closed t-1")
    events.publish_account_changed(account.pk)
    events.publish_automations_changed(account.pk)
    events.publish_automation_log(entry.pk)
    bus.publish_session_ended(alice.pk, "logout")
    assert bus.outbox_flush()  # on Redis the events are sent by the outbox thread, in order
    groups = {g for g, _ in captured}
    assert groups == {f"user.{alice.pk}"}
    typed = (
        bus.AccountChangedEvent,
        bus.AutomationsChangedEvent,
        bus.AutomationLogEvent,
        bus.ForceCloseEvent,
    )
    for (_, message), kind in zip(captured, typed, strict=True):
        _check(message, kind)
    assert [m["event_seq"] for _, m in captured] == [1, 2, 3, 4]
    assert "closed t-1" not in json.dumps(captured)  # ids only; the consumer re-reads, owner-scoped


def test_unknown_ids_publish_nothing(captured: list[tuple[str, dict[str, Any]]]) -> None:
    events.publish_account_changed(999_999)
    events.publish_automation_log(999_999)
    assert bus.outbox_flush()
    assert captured == []


def test_on_commit_variants_wait_for_the_commit(
    captured: list[tuple[str, dict[str, Any]]], alice: User, make_account: Callable[..., ExchangeAccount]
) -> None:
    account = make_account(alice)
    with transaction.atomic():
        events.publish_account_changed_on_commit(account.pk)
        assert bus.outbox_flush()
        assert captured == []
    assert bus.outbox_flush()
    assert len(captured) == 1
    with pytest.raises(RuntimeError):
        _publish_then_roll_back(account.pk)
    assert bus.outbox_flush()
    assert len(captured) == 1


def _publish_then_roll_back(account_id: int) -> None:
    with transaction.atomic():
        events.publish_account_changed_on_commit(account_id)
        raise RuntimeError("rolled back")


def test_group_names_are_valid() -> None:
    assert bus.user_group(42) == "user.42"
    assert bus.market_group("simulator") == "market.simulator"
    assert bus.market_group("sim/../x") == "market.simx"
