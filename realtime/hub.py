"""Per-process market fan-out: one channel-layer subscription per process and market group, local delivery.

If every dashboard socket joined ``market.<network>`` itself, each tick would be one layer message naming every
socket, and every consumer would wake through its own layer receive (two asyncio tasks per message per socket):
over a quarter of a Daphne process's CPU at 2,000 sockets (py-spy, ``bench/realtime.py``). Instead the process's
``MarketHub`` joins the group once, with a channel of its own, and hands each event to the sockets registered for
that group by calling their ``market_event`` coroutine directly, in registration order, yielding to the event loop
every ``BATCH`` sockets so connects and pings are not starved.

Membership refresh: the layer forgets a group member after its ``group_expiry`` (channels_redis: 1 day) and Redis
forgets everything on a restart, so the hub re-joins its groups every ``REJOIN_S`` and after a failed receive.
The hub stops (and leaves its groups) when its last socket leaves. One hub per event loop (Daphne runs one).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Protocol

from autobahn.exception import Disconnected

from axisor_bus.publish import market_group

logger = logging.getLogger(__name__)

BATCH = 100
REJOIN_S = 3600.0
RETRY_S = 1.0
# What a send to a client that has gone away raises: Uvicorn's ``ClientDisconnected`` (an ``OSError``), Daphne's
# (Autobahn's) ``Disconnected``.
CLIENT_GONE: tuple[type[Exception], ...] = (OSError, Disconnected)


class MarketListener(Protocol):
    async def market_event(self, event: dict[str, Any]) -> None: ...


class MarketHub:
    """See the module docstring. ``add``/``discard`` are called by consumers on their own event loop."""

    def __init__(self, layer: Any) -> None:  # noqa: ANN401 - channels' layers are untyped
        self.layer = layer
        self.channel: str | None = None
        self.members: dict[str, dict[int, MarketListener]] = {}
        self.delivered = 0
        self.failures = 0
        self.gone = 0  # sends to a client that had gone away
        self._tasks: list[asyncio.Task[None]] = []

    async def add(self, group: str, listener: MarketListener) -> None:
        if self.channel is None:
            # The default prefix: channels_redis reads every process-local channel from one key per process
            # (``specific.<process>!``); a channel of another prefix would be read only when it held the lock.
            self.channel = await self.layer.new_channel()
            self._tasks = [asyncio.create_task(self._receive_loop()), asyncio.create_task(self._rejoin_loop())]
        members = self.members.setdefault(group, {})
        if not members:
            await self.layer.group_add(group, self.channel)
        members[id(listener)] = listener

    async def discard(self, group: str, listener: MarketListener) -> None:
        members = self.members.get(group)
        if members is None or members.pop(id(listener), None) is None:
            return
        if members:
            return
        del self.members[group]
        if self.channel is not None:
            await self.layer.group_discard(group, self.channel)
        if not self.members:
            await self._stop()

    async def _stop(self) -> None:
        tasks, self._tasks, self.channel = self._tasks, [], None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _rejoin(self) -> None:
        channel = self.channel
        if channel is not None:
            for group in list(self.members):
                await self.layer.group_add(group, channel)

    async def _rejoin_loop(self) -> None:
        while True:
            await asyncio.sleep(REJOIN_S)
            try:
                await self._rejoin()
            except Exception:  # the receive loop reports layer failures; retry at the next period
                logger.warning("market hub: re-joining the market groups failed", exc_info=True)

    async def _receive_loop(self) -> None:
        channel = self.channel
        assert channel is not None
        while True:
            try:
                event = await self.layer.receive(channel)
            except asyncio.CancelledError:
                # The hub stopped. (A cancelled Redis read surfaces as this too, not as a Redis error:
                # ``config.channel_layer.BoundedRedisChannelLayer.receive``.)
                raise
            except Exception:
                self.failures += 1
                logger.exception("market hub: channel layer receive failed; retrying in %.0f s", RETRY_S)
                await asyncio.sleep(RETRY_S)
                try:
                    await self._rejoin()
                except Exception:
                    logger.warning("market hub: re-joining after a failed receive failed", exc_info=True)
                continue
            await self.deliver(event)

    async def deliver(self, event: dict[str, Any]) -> None:
        """Hand ``event`` to every socket of its market group (a failing socket is logged, the others still get
        it; a socket whose client has gone is counted, not logged as an error)."""
        market = event.get("market")
        network = market.get("network") if isinstance(market, dict) else None
        members = self.members.get(market_group(network)) if isinstance(network, str) else None
        if not members:
            return
        for i, listener in enumerate(list(members.values()), start=1):
            try:
                await listener.market_event(event)
            except CLIENT_GONE as exc:
                # The client went away between the tick and this send: an everyday event, not a fault; its
                # disconnect takes it off the hub. In a reconnect storm there are hundreds per tick, and a
                # traceback each cost the others their tick's CPU.
                self.gone += 1
                logger.debug("market hub: a socket went away before its market event (%s)", type(exc).__name__)
            except Exception:
                logger.exception("market hub: a socket failed to take a market event")
            if i % BATCH == 0:
                await asyncio.sleep(0)
        self.delivered += 1


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, MarketHub] = weakref.WeakKeyDictionary()


def market_hub(layer: Any) -> MarketHub:  # noqa: ANN401 - channels' layers are untyped
    """The hub of the running event loop (created on first use)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None or hub.layer is not layer:
        hub = _hubs[loop] = MarketHub(layer)
    return hub
