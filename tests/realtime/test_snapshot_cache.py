"""Snapshots from shared parts (``realtime.snapshot_cache``): the user part changes with the user's events only,
the market part is read once per tick per process, positions are re-marked at every new price."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from accounts.models import ExchangeAccount, User
from automations.models import TrackedTrade
from axisor_bus.publish import next_user_seq
from realtime import market as market_module
from realtime.snapshot_cache import cached_snapshot

pytestmark = pytest.mark.django_db


def test_the_user_part_is_read_once_per_event_and_re_marked_at_every_price(
    alice: User,
    make_account: Callable[..., ExchangeAccount],
    make_trade: Callable[..., TrackedTrade],
    set_market: Callable[..., Any],
    django_assert_num_queries: Any,
) -> None:
    account = make_account(alice)
    account.balance = 250_000
    account.save(update_fields=["balance"])
    make_trade(account, "t-1", side="buy", quantity=100, margin=10_000)
    set_market(last="100000.0")
    first, rows, seq = cached_snapshot(user=alice)
    assert [r["trade_id"] for r in rows] == ["t-1"]

    set_market(last="90000.0")
    with django_assert_num_queries(0):
        again, _, same_seq = cached_snapshot(user=alice)
    assert same_seq == seq
    assert again["market"]["last"] == "90000.0"
    assert again["positions"] is not None
    assert first["positions"] is not None
    assert again["positions"]["items"][0]["pl"] < first["positions"]["items"][0]["pl"]  # a long loses on the drop
    assert again["balance"] is not None
    assert again["balance"]["unrealized_pl"] == again["positions"]["items"][0]["pl"]

    make_trade(account, "t-2")  # a fill: its producer announces it, which advances the user's event_seq
    next_user_seq(alice.pk)
    fresh, rows, new_seq = cached_snapshot(user=alice)
    assert new_seq == seq + 1
    assert sorted(r["trade_id"] for r in rows) == ["t-1", "t-2"]
    assert fresh["positions"] is not None
    assert fresh["positions"]["count"] == 2


def test_the_market_part_is_read_from_the_cache_at_most_once_per_refresh_period(
    monkeypatch: pytest.MonkeyPatch, set_market: Callable[..., Any]
) -> None:
    set_market(last="100000.0")
    reads: list[str] = []
    real = market_module.market_state

    def counting(network: str) -> Any:  # noqa: ANN401
        reads.append(network)
        return real(network)

    monkeypatch.setattr(market_module, "market_state", counting)
    clock = [1000.0]
    monkeypatch.setattr("realtime.market.time.monotonic", lambda: clock[0])
    market_module.forget_shared_market_state()
    for _ in range(50):
        assert market_module.shared_market_state("simulator")["last"] == "100000.0"
    assert reads == ["simulator"]
    clock[0] += market_module.SHARED_REFRESH_S
    market_module.shared_market_state("simulator")
    assert reads == ["simulator", "simulator"]


def test_a_poll_costs_two_queries_once_the_user_part_is_cached(
    client: Client,
    alice: User,
    make_account: Callable[..., ExchangeAccount],
    set_market: Callable[..., Any],
    django_assert_max_num_queries: Any,
) -> None:
    account = make_account(alice)
    set_market(last="100000.0")
    client.force_login(alice)
    urls = ("/realtime/api/snapshot/", f"/realtime/api/accounts/{account.pk}/snapshot/")
    for url in urls:
        assert client.get(url).status_code == 200
    for url in urls:
        with django_assert_max_num_queries(2):  # the session and its user; the rest from the shared parts
            body = client.get(url).json()
        assert body["data"]["account"]["id"] == account.pk


def test_a_part_stored_at_an_older_event_seq_is_never_served(
    alice: User, make_account: Callable[..., ExchangeAccount], make_trade: Callable[..., TrackedTrade]
) -> None:
    """A slow reader that read the counter before an event may store its part after a newer one: the stored number
    is older than the current one, so the next read builds the part again instead of serving it."""
    from django.core.cache import cache

    from realtime.snapshot_cache import _key

    account = make_account(alice)
    make_trade(account, "t-1")
    _, _, seq = cached_snapshot(user=alice)
    stale = cache.get(_key(alice.pk, None))
    assert stale["event_seq"] == seq
    make_trade(account, "t-2")
    next_user_seq(alice.pk)
    _, rows, new_seq = cached_snapshot(user=alice)
    assert len(rows) == 2
    cache.set(_key(alice.pk, None), stale)  # the slow reader's part lands last
    _, rows, again = cached_snapshot(user=alice)
    assert again == new_seq == seq + 1
    assert sorted(r["trade_id"] for r in rows) == ["t-1", "t-2"]


def test_the_fallback_reads_the_counter_its_part_and_the_sockets_flag_in_one_cache_call(
    monkeypatch: pytest.MonkeyPatch, alice: User, make_account: Callable[..., ExchangeAccount]
) -> None:
    from django.core.cache import cache

    from realtime import ops
    from realtime.snapshot_cache import fallback_snapshot

    make_account(alice)
    assert fallback_snapshot(user=alice)[1] == "open"  # builds and stores the part
    calls: list[str] = []
    depth = [0]  # the local-memory cache's get_many calls get: count the outermost call only
    for name in ("get", "get_many", "set"):
        real = getattr(cache, name)

        def counted(key: Any, *args: Any, _name: str = name, _real: Any = real, **kwargs: Any) -> Any:  # noqa: ANN401
            if not depth[0] and "market" not in str(key):  # the market part: once per refresh period per process
                calls.append(_name)
            depth[0] += 1
            try:
                return _real(key, *args, **kwargs)
            finally:
                depth[0] -= 1

        monkeypatch.setattr(cache, name, counted)
    data, sockets = fallback_snapshot(user=alice)
    assert (sockets, calls) == ("open", ["get_many"])
    assert data["account"] is not None
    monkeypatch.undo()
    cache.set(ops.PAUSED_KEY, {"by": "staff"}, None)
    try:
        assert fallback_snapshot(user=alice)[1] == "paused"
    finally:
        cache.delete(ops.PAUSED_KEY)
