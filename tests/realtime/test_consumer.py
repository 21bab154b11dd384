"""The dashboard consumer through ``config.asgi.application`` (origin check + session auth exercised)."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from accounts.models import ExchangeAccount, User
from automations import publish as events
from automations.models import AuditEntry, TrackedTrade
from axisor_bus import publish as bus
from lnmarkets import maths
from realtime.consumers import CLOSE_TOO_LARGE
from tests.realtime.conftest import communicator, connect_as, market, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)


async def _messages_until(comm: Any, kind: str) -> list[dict[str, Any]]:
    out = []
    while True:
        msg = await comm.receive_json_from(timeout=3)
        out.append(msg)
        if msg["type"] == kind:
            return out


async def test_anonymous_socket_is_refused() -> None:
    comm = communicator(None)
    connected, code = await comm.connect()
    assert not connected
    assert code == 4401


async def test_foreign_origin_is_refused(alice: User) -> None:
    cookie = await database_sync_to_async(session_cookie)(alice)
    comm = communicator(cookie, origin="https://evil.example")
    connected, _ = await comm.connect()
    assert not connected


async def test_missing_origin_is_refused(alice: User) -> None:
    cookie = await database_sync_to_async(session_cookie)(alice)
    connected, _ = await communicator(cookie, origin=None).connect()
    assert not connected


async def test_forged_session_cookie_is_anonymous() -> None:
    connected, code = await communicator("not-a-session").connect()
    assert not connected
    assert code == 4401


async def test_snapshot_matches_the_database(
    alice: User, make_account: Callable[..., ExchangeAccount], make_trade: Callable[..., TrackedTrade], set_market: Any
) -> None:
    account = await database_sync_to_async(make_account)(alice, label="main")
    account.balance = 250_000
    await database_sync_to_async(account.save)(update_fields=["balance"])
    await database_sync_to_async(make_trade)(account, "t-1", side="buy", quantity=100, margin=10_000)
    await database_sync_to_async(make_trade)(account, "t-2", side="sell", quantity=50, margin=5_000)
    await database_sync_to_async(make_trade)(account, "t-3", state=TrackedTrade.State.CLOSED)
    set_market(last="100000.0")

    comm, first = await connect_as(alice)
    assert first["seq"] == 1
    data = first["data"]
    assert data["account"] == {
        "id": account.pk,
        "label": "main",
        "network": "simulator",
        "is_paper": True,
        "kill_switch": False,
        "entries_halted": False,
    }
    items = {p["trade_id"]: p for p in data["positions"]["items"]}
    assert set(items) == {"t-1", "t-2"}
    expected_long = maths.pnl("buy", 100, Decimal("95000.0"), Decimal("100000.0"))
    expected_short = maths.pnl("sell", 50, Decimal("95000.0"), Decimal("100000.0"))
    assert items["t-1"]["pl"] == expected_long
    assert items["t-2"]["pl"] == expected_short
    assert items["t-1"]["entry_price"] == "95000.0"
    balance = data["balance"]
    assert balance["free"] == 250_000
    assert balance["in_margin"] == 15_000
    assert balance["unrealized_pl"] == expected_long + expected_short
    assert balance["total"] == 250_000 + 15_000 + expected_long + expected_short
    assert data["market"]["last"] == "100000.0"
    assert data["market"]["state"] == "live"
    text = json.dumps(first)
    assert "secret" not in text
    assert "api_key" not in text
    await comm.disconnect()


async def test_seq_increases_by_one(alice: User, make_account: Callable[..., ExchangeAccount]) -> None:
    await database_sync_to_async(make_account)(alice)
    comm, first = await connect_as(alice)
    seqs = [first["seq"]]
    for message in ({"type": "ping"}, {"type": "refresh"}, {"type": "nope"}, {"type": "ping"}):
        await comm.send_json_to(message)
        seqs.append((await comm.receive_json_from(timeout=3))["seq"])
    assert seqs == [1, 2, 3, 4, 5]
    await comm.disconnect()


async def test_alice_cannot_switch_to_bobs_account(
    alice: User, bob: User, make_account: Callable[..., ExchangeAccount]
) -> None:
    mine = await database_sync_to_async(make_account)(alice, label="a1")
    other = await database_sync_to_async(make_account)(alice, label="a2", network="signet")
    bobs = await database_sync_to_async(make_account)(bob, label="bob-main")
    comm, _ = await connect_as(alice)

    for bad in (bobs.pk, str(bobs.pk), True, None, 10**12, [bobs.pk]):
        await comm.send_json_to({"type": "switch_account", "account_id": bad})
        reply = await comm.receive_json_from(timeout=3)
        assert reply["type"] == "error", bad
        assert "bob-main" not in json.dumps(reply)

    await comm.send_json_to({"type": "switch_account", "account_id": other.pk})
    reply = await comm.receive_json_from(timeout=3)
    assert reply["type"] == "snapshot"
    assert reply["data"]["account"]["id"] == other.pk
    assert {a["id"] for a in reply["data"]["accounts"]} == {mine.pk, other.pk}
    await comm.disconnect()


async def test_alice_never_receives_bobs_events(
    alice: User, bob: User, make_account: Callable[..., ExchangeAccount]
) -> None:
    await database_sync_to_async(make_account)(alice)
    bobs = await database_sync_to_async(make_account)(bob, label="bob-main")
    entry = await database_sync_to_async(AuditEntry.objects.create)(
        account=bobs, event="decision", outcome="ok", message="bob's secret decision"
    )
    alice_comm, _ = await connect_as(alice)
    bob_comm, _ = await connect_as(bob)

    # Crafted client messages naming server-side handlers or other groups are just unknown types.
    for crafted in (
        {"type": "account.changed", "account_id": bobs.pk},
        {"type": "automation.log", "account_id": bobs.pk, "entry_id": entry.pk},
        {"type": "session.ended"},
        {"type": "switch_account", "account_id": bobs.pk, "group": f"user.{bob.pk}"},
    ):
        await alice_comm.send_json_to(crafted)
        reply = await alice_comm.receive_json_from(timeout=3)
        assert reply["type"] == "error"
        assert "secret decision" not in json.dumps(reply)

    await database_sync_to_async(events.publish_account_changed)(bobs.pk)
    await database_sync_to_async(events.publish_automation_log)(entry.pk)
    assert await alice_comm.receive_nothing(timeout=0.3)
    received = await _messages_until(bob_comm, "automation_log")
    assert received[-1]["data"]["message"] == "bob's secret decision"
    await alice_comm.disconnect()
    await bob_comm.disconnect()


async def test_account_events_refresh_balance_and_positions(
    alice: User, make_account: Callable[..., ExchangeAccount], make_trade: Callable[..., TrackedTrade]
) -> None:
    account = await database_sync_to_async(make_account)(alice)
    comm, first = await connect_as(alice)
    assert first["data"]["positions"]["count"] == 0
    await database_sync_to_async(make_trade)(account, "t-9", pl=-123)
    await database_sync_to_async(events.publish_account_changed)(account.pk)
    balance = await comm.receive_json_from(timeout=3)
    positions = await comm.receive_json_from(timeout=3)
    assert (balance["type"], balance["seq"]) == ("balance", 2)
    assert (positions["type"], positions["seq"]) == ("positions", 3)
    assert positions["data"]["items"][0]["pl"] == -123  # no market price: the stored PnL
    await database_sync_to_async(events.publish_automations_changed)(account.pk)
    automations = await comm.receive_json_from(timeout=3)
    assert automations["type"] == "automations"
    await comm.disconnect()


async def test_market_tick_is_forwarded_and_marks_positions(
    alice: User, make_account: Callable[..., ExchangeAccount], make_trade: Callable[..., TrackedTrade]
) -> None:
    account = await database_sync_to_async(make_account)(alice)
    await database_sync_to_async(make_trade)(account, "t-1")
    comm, _ = await connect_as(alice)
    await database_sync_to_async(bus.group_send)(
        "market.simulator", {"type": "market.tick", "market": market(last="90000.0")}
    )
    tick = await comm.receive_json_from(timeout=3)
    status = await comm.receive_json_from(timeout=3)
    assert tick["type"] == "tick"
    assert tick["data"]["ticker"]["last"] == "90000.0"
    pl = maths.pnl("buy", 100, Decimal("95000.0"), Decimal("90000.0"))
    assert tick["data"]["positions"]["items"][0]["pl"] == pl
    assert tick["data"]["balance"]["unrealized_pl"] == pl
    assert status["type"] == "status"
    assert status["data"]["state"] == "live"
    # A signet tick does not reach a simulator page.
    await database_sync_to_async(bus.group_send)(
        "market.signet", {"type": "market.tick", "market": market(network="signet")}
    )
    assert await comm.receive_nothing(timeout=0.2)
    await comm.disconnect()


async def test_oversized_frame_gets_error_and_close(alice: User, make_account: Any) -> None:
    await database_sync_to_async(make_account)(alice)
    comm, _ = await connect_as(alice)
    await comm.send_to(text_data="x" * (1024 * 1024))
    reply = await comm.receive_json_from(timeout=3)
    assert reply["type"] == "error"
    assert reply["data"]["code"] == "too_large"
    closed = await comm.receive_output(timeout=3)
    assert closed["type"] == "websocket.close"
    assert closed["code"] == CLOSE_TOO_LARGE == 4009


async def test_malformed_messages_get_errors_not_crashes(alice: User, make_account: Any) -> None:
    await database_sync_to_async(make_account)(alice)
    comm, _ = await connect_as(alice)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"text_data": "{not json"}, "bad_json"),
        ({"text_data": "[1, 2]"}, "unknown_type"),
        ({"text_data": '"refresh"'}, "unknown_type"),
        ({"text_data": "null"}, "unknown_type"),
        ({"bytes_data": b"\x00\x01"}, "bad_request"),
        ({"text_data": '{"type": "switch_account"}'}, "bad_request"),
    ]
    for kwargs, code in cases:
        await comm.send_to(**kwargs)
        reply = await comm.receive_json_from(timeout=3)
        assert reply["type"] == "error", kwargs
        assert reply["data"]["code"] == code, kwargs
    await comm.send_json_to({"type": "ping"})
    assert (await comm.receive_json_from(timeout=3))["type"] == "pong"
    await comm.disconnect()


async def test_logout_closes_every_socket_of_the_user(alice: User, make_account: Any) -> None:
    await database_sync_to_async(make_account)(alice)
    client = Client()
    await database_sync_to_async(client.force_login)(alice)
    tab1, tab2 = communicator(client.cookies["sessionid"].value), communicator(client.cookies["sessionid"].value)
    for tab in (tab1, tab2):
        assert (await tab.connect())[0]
        assert (await tab.receive_json_from(timeout=3))["type"] == "snapshot"
    other_session, _ = await connect_as(alice)

    response = await database_sync_to_async(client.post)("/accounts/logout/")
    assert response.status_code == 302
    for tab in (tab1, tab2, other_session):
        reply = await tab.receive_json_from(timeout=3)
        assert reply["data"]["code"] == "session_ended"
        closed = await tab.receive_output(timeout=3)
        assert closed == {"type": "websocket.close", "code": 4401}


async def test_password_change_closes_the_socket(alice: User, bob: User, make_account: Any) -> None:
    await database_sync_to_async(make_account)(alice)
    await database_sync_to_async(make_account)(bob, label="b")
    comm, _ = await connect_as(alice)
    bob_comm, _ = await connect_as(bob)

    def change() -> None:
        user = User.objects.get(pk=alice.pk)
        user.set_password("a-new-password-456")
        user.save()
        User.objects.get(pk=bob.pk).save()  # a save without a password change closes nothing

    await database_sync_to_async(change)()
    reply = await comm.receive_json_from(timeout=3)
    assert reply["data"]["code"] == "session_ended"
    assert (await comm.receive_output(timeout=3))["type"] == "websocket.close"
    assert await bob_comm.receive_nothing(timeout=0.3)
    await bob_comm.disconnect()


async def test_a_dropped_layer_event_turns_into_a_snapshot(
    alice: User, make_account: Callable[..., ExchangeAccount]
) -> None:
    account = await database_sync_to_async(make_account)(alice)
    comm, _ = await connect_as(alice)
    await database_sync_to_async(events.publish_account_changed)(account.pk)
    assert (await comm.receive_json_from(timeout=3))["type"] == "balance"
    assert (await comm.receive_json_from(timeout=3))["type"] == "positions"
    await database_sync_to_async(bus.next_user_seq)(alice.pk)  # an event the layer dropped
    await database_sync_to_async(events.publish_account_changed)(account.pk)
    reply = await comm.receive_json_from(timeout=3)
    assert reply["type"] == "snapshot"
    assert reply["seq"] == 4
    assert await comm.receive_nothing(timeout=0.2)
    await comm.disconnect()


async def test_a_handshake_and_its_snapshot_do_not_wait_for_the_process_database_thread(
    alice: User, make_account: Callable[..., ExchangeAccount]
) -> None:
    """Issue #14: the session lookup and the first snapshot run on pool threads (``realtime.socket_auth``), so a
    storm's connects are not served one by one behind every other socket's work on the one thread-sensitive
    thread. Here that thread is held until the socket has its snapshot."""
    import asyncio
    import threading

    from asgiref.sync import sync_to_async

    await database_sync_to_async(make_account)(alice, label="main")
    cookie = await database_sync_to_async(session_cookie)(alice)
    release = threading.Event()
    holding = asyncio.Event()
    loop = asyncio.get_running_loop()

    def hold() -> None:
        loop.call_soon_threadsafe(holding.set)
        release.wait(10)

    held = asyncio.ensure_future(sync_to_async(hold, thread_sensitive=True)())
    try:
        await asyncio.wait_for(holding.wait(), 5)
        comm = communicator(cookie)
        connected, _ = await comm.connect(timeout=5)
        assert connected
        first = await comm.receive_json_from(timeout=5)
        assert first["type"] == "snapshot"
        assert first["data"]["account"]["label"] == "main"
        assert not release.is_set()  # all of it while the database thread was still held
        await comm.disconnect()
    finally:
        release.set()
        await held


async def test_events_sent_together_are_applied_in_order_and_nothing_after_a_session_end(
    alice: User, make_account: Callable[..., ExchangeAccount]
) -> None:
    account = await database_sync_to_async(make_account)(alice)
    entry = await database_sync_to_async(AuditEntry.objects.create)(
        account=account, event="order", outcome="ok", message="closed together"
    )
    comm, _ = await connect_as(alice)
    together = [
        (alice.pk, {"type": "account.changed", "account_id": account.pk}),
        (alice.pk, {"type": "automation.log", "account_id": account.pk, "entry_id": entry.pk}),
    ]
    await database_sync_to_async(bus._send_user_events)(together)  # noqa: SLF001 - one user.events message
    received = [await comm.receive_json_from(timeout=3) for _ in range(3)]
    assert [m["type"] for m in received] == ["balance", "positions", "automation_log"]
    assert received[2]["data"]["message"] == "closed together"
    assert [m["seq"] for m in received] == [2, 3, 4]  # no jump: each event applied as if it had come alone
    ended = [
        (alice.pk, {"type": "session.ended", "reason": "logout"}),
        (alice.pk, {"type": "account.changed", "account_id": account.pk}),
    ]
    await database_sync_to_async(bus._send_user_events)(ended)  # noqa: SLF001
    assert (await comm.receive_json_from(timeout=3))["data"]["code"] == "session_ended"
    assert (await comm.receive_output(timeout=3))["type"] == "websocket.close"
    assert await comm.receive_nothing(timeout=0.3)
