"""Stream v1 (§7.1): JSON-RPC 2.0 over WebSocket at ``/v1``, public price topics and private trade events.

Each socket has an outbound queue drained by its own writer task, so one slow client never blocks the tick loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from lnmarkets.simulator.config import SimulatorConfig
from lnmarkets.simulator.events import Event, FundingEvent, TickEvent, TradeEvent
from lnmarkets.simulator.exchange import Exchange
from lnmarkets.simulator.stream_rpc import RpcError, dispatch, parse_request
from lnmarkets.simulator.trades import ApiKey
from lnmarkets.simulator.wire import dumps, ms, parse_iso

PAIR = "futures/inverse/btc_usd"
TICKER, LAST_PRICE, INDEX, BUCKETS, FUNDING = (
    f"{PAIR}/ticker",
    f"{PAIR}/lastPrice",
    f"{PAIR}/index",
    f"{PAIR}/buckets",
    f"{PAIR}/funding",
)
TRADES = f"{PAIR}/isolated/trades"
TICK_TOPICS = (TICKER, LAST_PRICE, INDEX, BUCKETS)


class StreamSocket:
    def __init__(self, ws: web.WebSocketResponse, queue_size: int, rps: int) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=queue_size)
        self.topics: set[str] = set()
        self.api_key: ApiKey | None = None
        self.inbound: deque[float] = deque()
        self.rps = rps
        self.writer: asyncio.Task[None] | None = None

    def allow_inbound(self) -> int:
        """Remaining messages in this second after this one, or -1 when over the cap (10 msg/s)."""
        now = time.monotonic()
        while self.inbound and self.inbound[0] <= now - 1.0:
            self.inbound.popleft()
        if len(self.inbound) >= self.rps:
            return -1
        self.inbound.append(now)
        return self.rps - len(self.inbound)

    async def write_loop(self) -> None:
        while True:
            text = await self.queue.get()
            if self.ws.closed:
                return
            await self.ws.send_str(text)


class Hub:
    """Subscriptions and fan-out. Listens to the Exchange's events."""

    def __init__(self, exchange: Exchange, config: SimulatorConfig) -> None:
        self.exchange = exchange
        self.config = config
        self.sockets: set[StreamSocket] = set()
        self.by_topic: dict[str, set[StreamSocket]] = {}
        self.silent_until = 0.0
        self.refuse_until = 0.0
        self.pushed = 0
        exchange.listeners.append(self.on_event)

    # -- fan-out -------------------------------------------------------------------------------------------------
    @property
    def silent(self) -> bool:
        return time.monotonic() < self.silent_until

    def send(self, sock: StreamSocket, text: str) -> None:
        if self.silent or sock.ws.closed:
            return
        try:
            sock.queue.put_nowait(text)
        except asyncio.QueueFull:
            asyncio.get_running_loop().create_task(sock.ws.close(code=1013, message=b"slow consumer"))

    def publish(
        self, topic: str, data: Callable[[], object], only: Callable[[StreamSocket], bool] | None = None
    ) -> None:
        subscribers = self.by_topic.get(topic)
        if not subscribers:
            return
        text = dumps({"jsonrpc": "2.0", "method": "subscription", "params": {"topic": topic, "data": data()}})
        for sock in list(subscribers):
            if only is None or only(sock):
                self.send(sock, text)
                self.pushed += 1

    def on_event(self, event: Event) -> None:
        if not self.sockets:
            return
        if isinstance(event, TickEvent):
            self._publish_prices()
        elif isinstance(event, TradeEvent):
            payload = {"pair": "btc_usd", "event": event.event, "trade": event.trade}
            self.publish(
                TRADES, lambda: payload, lambda s: s.api_key is not None and s.api_key.account_id == event.account_id
            )
        elif isinstance(event, FundingEvent):
            settlement = event.settlement
            self.publish(
                FUNDING,
                lambda: {
                    "pair": "btc_usd",
                    "current": {"rate": settlement["fundingRate"], "time": ms(parse_iso(str(settlement["time"])))},
                },
            )

    def _publish_prices(self) -> None:
        ex = self.exchange
        now = ms(ex.ticker_moment())
        self.publish(
            TICKER,
            lambda: {
                "time": now,
                "lastPrice": ex.last_price,
                "index": ex.index,
                "funding": {"rate": ex.funding_rate, "time": ms(ex.next_funding)},
            },
        )
        self.publish(LAST_PRICE, lambda: {"time": now, "lastPrice": ex.last_price})
        self.publish(INDEX, lambda: {"time": now, "index": ex.index})
        self.publish(BUCKETS, lambda: {"time": now, "buckets": [q.as_json() for q in ex.quotes]})

    # -- subscriptions -------------------------------------------------------------------------------------------
    def subscribe(self, sock: StreamSocket, topics: list[str]) -> None:
        for topic in topics:
            sock.topics.add(topic)
            self.by_topic.setdefault(topic, set()).add(sock)

    def unsubscribe(self, sock: StreamSocket, topics: list[str]) -> list[str]:
        removed = [t for t in topics if t in sock.topics]
        for topic in removed:
            sock.topics.discard(topic)
            self.by_topic.get(topic, set()).discard(sock)
        return removed

    def forget(self, sock: StreamSocket) -> None:
        self.unsubscribe(sock, list(sock.topics))
        self.sockets.discard(sock)
        if sock.writer is not None:
            sock.writer.cancel()

    async def drop_all(self, refuse_seconds: float = 0.0) -> None:
        self.refuse_until = time.monotonic() + refuse_seconds
        for sock in list(self.sockets):
            await sock.ws.close(code=1012, message=b"dropped by fault injection")

    # -- the socket ----------------------------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        if time.monotonic() < self.refuse_until:
            return web.json_response({"code": "SERVICE_UNAVAILABLE", "message": "Stream unavailable"}, status=503)
        ws = web.WebSocketResponse(heartbeat=None, max_msg_size=64 * 1024)
        await ws.prepare(request)
        sock = StreamSocket(ws, self.config.stream_queue_size, self.config.stream_msgs_per_s)
        sock.writer = asyncio.get_running_loop().create_task(sock.write_loop())
        self.sockets.add(sock)
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._on_text(sock, message.data)
                elif message.type == WSMsgType.BINARY:
                    self._reply(sock, None, error=RpcError(-32600, "Binary frames are not supported"))
        finally:
            self.forget(sock)
            with contextlib.suppress(asyncio.CancelledError):
                await ws.close()
        return ws

    def _on_text(self, sock: StreamSocket, text: str) -> None:
        remaining = sock.allow_inbound()
        request_id: Any = None
        try:
            request_id, method, params = parse_request(text)
            result = dispatch(self, sock, method, params) if remaining >= 0 else _over_cap()
        except RpcError as error:
            self._reply(sock, request_id, error=error, remaining=max(remaining, 0))
            return
        self._reply(sock, request_id, result=result, remaining=remaining)

    def _reply(
        self,
        sock: StreamSocket,
        request_id: Any,
        *,
        result: object = None,
        error: RpcError | None = None,
        remaining: int = 0,
    ) -> None:
        message: dict[str, object] = {"jsonrpc": "2.0", "id": request_id}
        if error is not None:
            message["error"] = error.as_json()
        else:
            message["result"] = result
        message["rateLimit"] = {"remaining": remaining, "limit": sock.rps}
        self.send(sock, dumps(message))


def _over_cap() -> object:
    raise RpcError(-32029, "Too many messages: 10 per second per socket", "TOO_MANY_REQUESTS")
