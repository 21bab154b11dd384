"""The dashboard WebSocket: authenticate, join, snapshot, forward (house rule 10, docs/architecture.md).

Protocol (docs/architecture.md, "Flow 2: tick → browser").
Every server message is ``{"type", "seq", "ts", "data"}`` where ``seq``
counts this connection's messages from 1 with no gaps, and ``ts`` is the server's UTC time:

* ``snapshot`` on connect, on ``refresh`` and after ``switch_account``: ``realtime.snapshot.Snapshot``;
* ``ticker`` (market data), ``status`` (market state changed: live / fallback / stale), ``balance``, ``positions``,
  ``automations``, ``automation_log``, ``pong``, and ``error`` ``{"code", "message"}``.

Client messages (JSON objects, at most ``MAX_FRAME`` bytes): ``{"type": "refresh"}``, ``{"type": "ping"}``,
``{"type": "switch_account", "account_id": <int>}`` (only an account the user owns; it changes what this socket
shows, not the stored active account — that is a POST). Anything else gets an ``error``; an oversized frame gets an
``error`` and a close (4009: an application may not send 1009 itself, Daphne would turn it into 1011); JSON nested
deeper than Python's parser allows is ``bad_json`` like any other unparsable frame. Anonymous sockets are refused
at the handshake (4401); ``session.ended`` (logout, password change, 2FA change) sends ``error`` ``session_ended``
and closes with 4401.

Groups are derived from the authenticated user and the owned account only: ``user.<id>`` (joined by the socket) and
``market.<network>`` (joined once per process by ``realtime.hub.MarketHub``, which hands each tick to the sockets
showing that network).
No exchange call, no business rule here: state comes from ``realtime.snapshot`` through ``database_sync_to_async``,
and what each event changes (the frames to send, ``seq``, resync) from ``realtime.socket_state.SocketState``.

Bounded connect path (issue #14): the handshake (session lookup up to the accept) holds a slot of the process's
handshake gate (``realtime.admission``); after the accept, the user group join and the first snapshot hold a slot of
the snapshot gate, so a storm of connects is served at the rate the process sustains instead of flooding the
database thread. A socket the gates cannot take gets ``error`` ``overloaded`` with ``retry_after_ms`` and a 4429
close; ``dashboard.js`` reconnects after that delay plus jitter.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils import translation

from accounts.models import ExchangeAccount, User
from accounts.preferences import user_language
from axisor_bus.publish import broadcast_group, market_group, remember_server_loop, user_group
from config.metrics import SOCKETS_OPEN
from config.params import MAX_ID
from realtime import ops
from realtime import snapshot as snap
from realtime.admission import CLOSE_OVERLOADED, Shed, gate
from realtime.hub import market_hub
from realtime.market import MarketData
from realtime.pool_threads import in_pool
from realtime.snapshot_cache import cached_snapshot
from realtime.socket_state import SocketState

MAX_FRAME = 16 * 1024
MAX_MESSAGES_PER_SECOND = 10
CLOSE_UNAUTHENTICATED = 4401
CLOSE_PAUSED = 4503  # an operator paused live sockets (realtime.ops): poll the HTTP fallback instead
CLOSE_TOO_LARGE = 4009  # the application range (4000-4999): Daphne refuses 1009 from an application


_snapshot_in_pool = in_pool(cached_snapshot)


def _account_parts(
    user: User, account_id: int
) -> tuple[list[snap.PositionRow], snap.PositionsData, snap.BalanceData] | None:
    account: ExchangeAccount | None = snap.account_for_user(user=user, account_id=account_id)
    return None if account is None else snap.account_parts(account)


def _automations(user: User, account_id: int) -> snap.AutomationsData | None:
    account = snap.account_for_user(user=user, account_id=account_id)
    return None if account is None else snap.automations_data(account)


class DashboardConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]  # channels is untyped
    """One dashboard tab; see the module docstring."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user: User = user
        # Toasts and audit lines in the user's language (this consumer's task keeps it for its handlers).
        accept = dict(self.scope.get("headers", [])).get(b"accept-language", b"").decode("latin-1")
        translation.activate(user_language(user, accept))
        self.state = SocketState()
        self.joined: set[str] = set()
        self.recent: list[float] = []
        remember_server_loop(asyncio.get_running_loop())
        # Join the broadcast group before reading the flag: a pause issued in between still reaches this socket.
        await self._join(broadcast_group())
        if await ops.sockets_paused_async():
            await self._leave(broadcast_group())
            await self.close(code=CLOSE_PAUSED)
            return
        await self.accept()
        self.counted = True
        SOCKETS_OPEN.inc()
        try:
            async with gate("WS_SNAPSHOT").slot():
                await self._join(user_group(user.pk))
                await self._send_snapshot(None)
        except Shed as shed:
            frame = self.state.frame(
                "error",
                {
                    "code": "overloaded",
                    "message": "The server is busy; reconnecting shortly.",
                    "retry_after_ms": shed.retry_after_ms,
                },
            )
            await self.send(text_data=frame)
            await self.close(code=CLOSE_OVERLOADED)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Run the message's handler without Channels' ``aclose_old_connections()`` first: that is a no-op hop to
        the one thread that runs every socket's database work, queued behind the others' session lookups and
        snapshots; in a connect or disconnect storm it delays every handshake (docs/adr/0005-consumer-dispatch.md).
        Every database access here goes through ``database_sync_to_async``, which closes stale connections itself."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        """Channels' ``websocket_disconnect`` without its trailing ``aclose_old_connections()`` (see ``dispatch``):
        ``disconnect`` touches no database."""
        await self.disconnect(message.get("code", 1000))
        raise StopConsumer

    async def disconnect(self, code: int) -> None:
        if getattr(self, "counted", False):
            self.counted = False
            SOCKETS_OPEN.dec()
        await self._watch_market(None)
        for group in list(getattr(self, "joined", ())):
            await self.channel_layer.group_discard(group, self.channel_name)
        self.joined = set()

    # --- sending ------------------------------------------------------------------------------------------------

    async def _send_frames(self, frames: list[str]) -> None:
        for frame in frames:
            await self.send(text_data=frame)

    async def send_message(self, kind: str, data: Any) -> None:  # noqa: ANN401 - JSON-ready payloads
        """Send one typed message; ``seq`` grows by exactly one per message."""
        await self.send(text_data=self.state.frame(kind, data))

    async def send_error(self, code: str, message: str) -> None:
        await self.send(text_data=self.state.error(code, message))

    async def _join(self, group: str) -> None:
        if group not in self.joined:
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.add(group)

    async def _leave(self, group: str) -> None:
        if group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)
            self.joined.discard(group)

    async def _watch_market(self, network: str | None) -> None:
        """Receive ``network``'s market events (``None``: none) through this process's ``MarketHub``."""
        watched: str | None = getattr(self, "watched", None)
        if network == watched:
            return
        hub = market_hub(self.channel_layer)
        if watched:
            await hub.discard(market_group(watched), self)
        self.watched = network
        if network:
            await hub.add(market_group(network), self)

    async def _send_snapshot(self, account_id: int | None) -> None:
        # The snapshot is current to the per-user event counter it returns (read before the state): an event
        # issued meanwhile is then applied again (harmless: handlers re-read), never lost. It is read on a pool
        # thread, not the process's one database thread: a storm's snapshots then overlap their round trips.
        data, rows, event_seq = await _snapshot_in_pool(user=self.user, account_id=account_id)
        account = data["account"]
        await self._watch_market(account["network"] if account else None)
        await self._send_frames(self.state.on_snapshot(data, rows, event_seq))

    # --- client messages ----------------------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Size, rate and JSON checks before dispatch; never raises on bad input."""
        size = len(text_data.encode("utf-8", "surrogatepass")) if text_data is not None else len(bytes_data or b"")
        if size > MAX_FRAME:
            await self.send_error("too_large", f"frames are limited to {MAX_FRAME} bytes")
            await self.close(code=CLOSE_TOO_LARGE)
            return
        now = time.monotonic()
        self.recent = [t for t in self.recent if now - t < 1.0] + [now]
        if len(self.recent) > MAX_MESSAGES_PER_SECOND:
            await self.send_error("rate_limited", "too many messages")
            return
        if text_data is None:
            await self.send_error("bad_request", "text JSON frames only")
            return
        try:
            content = json.loads(text_data)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
            await self.send_error("bad_json", "the message is not valid JSON")
            return
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:  # noqa: ANN401
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_message("pong", {})
        elif kind == "refresh":
            await self._send_snapshot(self.state.account_id)
        elif kind == "switch_account":
            await self._switch(content.get("account_id"))
        else:
            await self.send_error("unknown_type", "expected refresh, switch_account or ping")

    async def _switch(self, raw: Any) -> None:  # noqa: ANN401
        if isinstance(raw, bool) or not isinstance(raw, int) or not 0 < raw <= MAX_ID:
            await self.send_error("bad_request", "account_id must be an integer")
            return
        owned = await database_sync_to_async(snap.account_for_user)(user=self.user, account_id=raw)
        if owned is None:
            await self.send_error("not_found", "no such account")
            return
        await self._send_snapshot(owned.pk)

    # --- group events (one handler per event type) --------------------------------------------------------------

    async def _resynced(self, event: dict[str, Any]) -> bool:
        """On a jump in the per-user ``event_seq`` (the layer dropped an event) send a snapshot instead."""
        if self.state.needs_resync(event):
            await self._send_snapshot(self.state.account_id)
            return True
        return False

    async def user_events(self, message: dict[str, Any]) -> None:
        """Several per-user events sent together (``axisor_bus.publish.UserEventsEvent``), each applied in order as
        if it had come alone; nothing after the one that closes the socket."""
        for event in message["events"]:
            await self.dispatch(event)
            if event.get("type") in ("session.ended", "sockets.paused"):
                return

    async def account_changed(self, event: dict[str, Any]) -> None:
        if await self._resynced(event) or not self.state.shows(event):
            return
        parts = await database_sync_to_async(_account_parts)(self.user, event["account_id"])
        await self._send_frames(self.state.on_account(parts))

    async def automations_changed(self, event: dict[str, Any]) -> None:
        if await self._resynced(event) or not self.state.shows(event):
            return
        data = await database_sync_to_async(_automations)(self.user, event["account_id"])
        if data is not None:
            await self.send_message("automations", data)

    async def automation_log(self, event: dict[str, Any]) -> None:
        if await self._resynced(event) or not self.state.shows(event):
            return
        entry = await database_sync_to_async(snap.audit_entry_for_account)(
            account_id=event["account_id"], entry_id=int(event["entry_id"])
        )
        if entry is not None:
            await self.send_message("automation_log", entry)

    async def market_event(self, event: dict[str, Any]) -> None:
        """A ``market.tick`` or ``market.status`` event from the process's ``MarketHub``."""
        if event.get("type") == "market.tick":
            await self.market_tick(event)
        elif event.get("type") == "market.status":
            await self.market_status(event)

    async def market_tick(self, event: dict[str, Any]) -> None:
        market: MarketData = event["market"]
        if market.get("network") != self.state.network:
            return
        encoded = event.get("encoded")
        if not isinstance(encoded, str):
            # The hub hands the same event dict to every socket of this process: encode it once.
            encoded = event["encoded"] = json.dumps(market)
        await self._send_frames(self.state.on_tick(market, encoded))

    async def market_status(self, event: dict[str, Any]) -> None:
        await self._send_frames(self.state.on_status(event["market"]))

    async def session_ended(self, event: dict[str, Any]) -> None:
        await self.send_error("session_ended", "your session ended; log in again")
        await self.close(code=CLOSE_UNAUTHENTICATED)

    async def sockets_paused(self, event: dict[str, Any]) -> None:
        await self.send_error("sockets_paused", "Live updates paused by an operator: refreshing every 5 s instead.")
        await self.close(code=CLOSE_PAUSED)
