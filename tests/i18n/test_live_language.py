"""The dashboard socket speaks the user's language: a toast (``automation_log``) and the snapshot's audit list say
what happened in Portuguese for a Portuguese speaker, in English for another user (the same entry)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from accounts.models import ExchangeAccount, User
from automations import publish as events
from automations.models import AuditEntry
from automations.services.trades import trade_closed_said
from tests.realtime.conftest import connect_as

pytestmark = pytest.mark.django_db(transaction=True)


async def _next_log(comm: WebsocketCommunicator) -> dict[str, Any]:
    for _ in range(20):
        message: dict[str, Any] = await comm.receive_json_from(timeout=3)
        if message["type"] == "automation_log":
            data: dict[str, Any] = message["data"]
            return data
    raise AssertionError("no automation_log message")


async def test_a_toast_is_in_the_users_language(alice: User, make_account: Callable[..., ExchangeAccount]) -> None:
    alice.language = "pt-br"
    await database_sync_to_async(alice.save)(update_fields=["language"])
    account = await database_sync_to_async(make_account)(alice, label="Papel")
    message, inputs = trade_closed_said("t-7", "takeprofit", "101000", 3500)
    entry = await database_sync_to_async(AuditEntry.objects.create)(
        account=account, event="reconcile", outcome="info", message=message, inputs=inputs
    )
    comm, snapshot = await connect_as(alice)
    said = "A operação t-7 atingiu seu take-profit (saída 101000, PnL 3500 sats)."
    assert [e["message"] for e in snapshot["data"]["audit"]] == [said]
    await database_sync_to_async(events.publish_automation_log)(entry.pk)
    assert (await _next_log(comm))["message"] == said
    await comm.disconnect()

    alice.language = "en"
    await database_sync_to_async(alice.save)(update_fields=["language"])
    comm, snapshot = await connect_as(alice)
    assert message == "Trade t-7 hit its take-profit (exit 101000, PnL 3500 sats)."
    assert [e["message"] for e in snapshot["data"]["audit"]] == [message]
    await database_sync_to_async(events.publish_automation_log)(entry.pk)
    assert (await _next_log(comm))["message"] == message
    await comm.disconnect()
