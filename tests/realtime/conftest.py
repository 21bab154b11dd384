"""Realtime test helpers: session cookies, connected communicators, trades and market state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.utils import timezone

from accounts.models import ExchangeAccount, User
from automations.models import TrackedTrade
from axisor_bus import publish as bus
from config.asgi import application
from realtime.market import FRESHNESS_LIMIT_S, MarketData, store_market_state

ORIGIN = "http://localhost"
PATH = "/ws/dashboard/"


def session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def communicator(cookie: str | None, origin: str | None = ORIGIN) -> WebsocketCommunicator:
    headers: list[tuple[bytes, bytes]] = []
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if cookie is not None:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(application, PATH, headers=headers)


async def connect_as(user: User) -> tuple[WebsocketCommunicator, dict[str, Any]]:
    """Connect ``user`` and return the communicator and its first message (the snapshot)."""
    cookie = await database_sync_to_async(session_cookie)(user)
    comm = communicator(cookie)
    connected, _ = await comm.connect()
    assert connected
    first = await comm.receive_json_from(timeout=3)
    assert first["type"] == "snapshot"
    return comm, first


def market(network: str = "simulator", last: str = "100000", age_s: float = 0.0, state: str = "live") -> MarketData:
    received = timezone.now() - timedelta(seconds=age_s)
    return {
        "network": network,
        "last": last,
        "index": last,
        "bid": last,
        "ask": last,
        "high_24h": last,
        "low_24h": last,
        "change_24h_pct": "0.00",
        "window_start": received.isoformat(),
        "exchange_time": received.isoformat(),
        "received_at": received.isoformat(),
        "age_ms": 0,
        "source": "stream",
        "state": state,  # type: ignore[typeddict-item]
        "stale_after_ms": int(FRESHNESS_LIMIT_S * 1000),
    }


@pytest.fixture
def set_market() -> Callable[..., MarketData]:
    def set_(**kwargs: Any) -> MarketData:
        data = market(**kwargs)
        store_market_state(data)
        return data

    return set_


@pytest.fixture
def make_trade(db: None) -> Callable[..., TrackedTrade]:
    def make(account: ExchangeAccount, trade_id: str = "t-1", **kwargs: Any) -> TrackedTrade:
        values: dict[str, Any] = {
            "origin": TrackedTrade.Origin.AXISOR,
            "managed": True,
            "state": TrackedTrade.State.RUNNING,
            "side": "buy",
            "quantity": 100,
            "entry_price": Decimal("95000.0"),
            "margin": 10_000,
            "leverage": Decimal("10"),
            "liquidation": Decimal("86500.0"),
            "maintenance_margin": 200,
            "pl": 0,
            "last_seen_at": timezone.now(),
        }
        values.update(kwargs)
        return TrackedTrade.objects.create(account=account, trade_id=trade_id, **values)

    return make


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    from django.core.cache import cache

    from realtime.market import forget_shared_market_state

    cache.clear()
    forget_shared_market_state()


def capture_group_sends(monkeypatch: pytest.MonkeyPatch, out: list[tuple[str, dict[str, Any]]]) -> None:
    """Every group message the bus hands to the channel layer, appended to ``out`` as (group, event): sent alone
    (``group_send``) or by the outbox's runs on Redis (``group_send_many``), a ``user.events`` message unpacked
    into the events it carries, in order."""
    monkeypatch.setattr(bus, "group_send", lambda group, message: out.append((group, dict(message))))

    def many(messages: dict[str, list[dict[str, Any]]]) -> None:
        for group, sent in messages.items():
            for message in sent:
                carried = message["events"] if message["type"] == "user.events" else [message]
                out.extend((group, dict(event)) for event in carried)

    monkeypatch.setattr(bus, "group_send_many", many)
