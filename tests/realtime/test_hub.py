"""MarketHub: one layer subscription per process and market group, direct delivery to the registered sockets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from autobahn.exception import Disconnected
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from uvicorn.protocols.utils import ClientDisconnected

from accounts.models import ExchangeAccount, User
from axisor_bus import publish as events
from realtime import hub
from realtime.hub import MarketHub
from tests.realtime.conftest import connect_as, market


class Listener:
    def __init__(self, fail: bool = False, gone: Exception | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail = fail
        self.gone = gone

    async def market_event(self, event: dict[str, Any]) -> None:
        if self.gone is not None:
            raise self.gone
        if self.fail:
            raise RuntimeError("socket broken")
        self.events.append(event)


class FlakyLayer(InMemoryChannelLayer):  # type: ignore[misc]  # channels is untyped
    """An in-memory layer whose first receive fails and which forgets its groups then (like a restarted Redis)."""

    def __init__(self) -> None:
        super().__init__()
        self.receives = 0
        self.group_adds = 0

    async def group_add(self, group: str, channel: str) -> None:
        self.group_adds += 1
        await super().group_add(group, channel)

    async def receive(self, channel: str) -> Any:  # noqa: ANN401
        self.receives += 1
        if self.receives == 1:
            self.groups.clear()
            raise ConnectionError("layer down")
        return await super().receive(channel)


async def _members(layer: Any, group: str) -> int:  # noqa: ANN401
    """Members of ``group`` in the in-memory layer (embedded default) or in Redis (channels_redis)."""
    if isinstance(layer, InMemoryChannelLayer):
        return len(layer.groups.get(group, {}))
    return int(await layer.connection(0).zcard(layer._group_key(group)))


def _tick(network: str = "simulator") -> dict[str, Any]:
    return {"type": "market.tick", "market": market(network=network)}


async def _until(predicate: Callable[[], bool]) -> None:
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached within 2 s")


async def test_one_group_member_per_process_delivered_to_each_socket_of_that_network() -> None:
    layer = InMemoryChannelLayer()
    market_hub = MarketHub(layer)
    sim = [Listener() for _ in range(250)]  # more than one delivery batch
    signet = Listener()
    for listener in sim:
        await market_hub.add("market.simulator", listener)
    await market_hub.add("market.signet", signet)
    assert len(layer.groups["market.simulator"]) == 1  # the hub, not 250 sockets
    await layer.group_send("market.simulator", _tick())
    await _until(lambda: all(len(listener.events) == 1 for listener in sim))
    assert signet.events == []
    for listener in [*sim, signet]:
        await market_hub.discard("market.simulator" if listener in sim else "market.signet", listener)
    assert layer.groups.get("market.simulator", {}) == {}
    assert layer.groups.get("market.signet", {}) == {}
    assert market_hub.channel is None
    assert market_hub._tasks == []


async def test_a_failing_socket_does_not_stop_delivery_to_the_others() -> None:
    market_hub = MarketHub(InMemoryChannelLayer())
    broken, fine = Listener(fail=True), Listener()
    await market_hub.add("market.simulator", broken)
    await market_hub.add("market.simulator", fine)
    await market_hub.deliver(_tick())
    assert len(fine.events) == 1
    await market_hub.discard("market.simulator", broken)
    await market_hub.discard("market.simulator", fine)


async def test_a_client_gone_mid_send_is_counted_not_logged_as_an_error(caplog: pytest.LogCaptureFixture) -> None:
    market_hub = MarketHub(InMemoryChannelLayer())
    uvicorn_gone, daphne_gone = Listener(gone=ClientDisconnected()), Listener(gone=Disconnected("closed protocol"))
    broken, fine = Listener(fail=True), Listener()
    for listener in (uvicorn_gone, daphne_gone, broken, fine):
        await market_hub.add("market.simulator", listener)
    with caplog.at_level(logging.DEBUG, logger="realtime.hub"):
        await market_hub.deliver(_tick())
    assert len(fine.events) == 1
    assert market_hub.gone == 2
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1  # the broken one, not the gone ones
    assert errors[0].exc_info is not None
    assert errors[0].exc_info[0] is RuntimeError
    for listener in (uvicorn_gone, daphne_gone, broken, fine):
        await market_hub.discard("market.simulator", listener)


async def test_after_a_failed_receive_the_hub_rejoins_and_keeps_delivering(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub, "RETRY_S", 0.01)
    layer = FlakyLayer()
    market_hub = MarketHub(layer)
    listener = Listener()
    await market_hub.add("market.simulator", listener)
    await _until(lambda: market_hub.failures == 1 and layer.group_adds >= 2)
    assert market_hub.channel in layer.groups["market.simulator"]
    await layer.group_send("market.simulator", _tick())
    await _until(lambda: len(listener.events) == 1)
    await market_hub.discard("market.simulator", listener)


@pytest.mark.django_db(transaction=True)
async def test_sockets_of_two_users_share_the_process_hub(
    alice: User, bob: User, make_account: Callable[..., ExchangeAccount]
) -> None:
    await database_sync_to_async(make_account)(alice)
    await database_sync_to_async(make_account)(bob)
    layer = get_channel_layer()
    before = await _members(layer, "market.simulator")  # hubs of earlier tests' event loops may linger
    a, _ = await connect_as(alice)
    b, _ = await connect_as(bob)
    assert await _members(layer, "market.simulator") == before + 1
    await database_sync_to_async(events.group_send)("market.simulator", _tick())
    assert (await a.receive_json_from(timeout=3))["type"] == "tick"
    assert (await b.receive_json_from(timeout=3))["type"] == "tick"
    await a.disconnect()
    await b.disconnect()
    assert await _members(layer, "market.simulator") == before
