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
