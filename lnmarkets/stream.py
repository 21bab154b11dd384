"""LN Markets Stream v1 client: JSON-RPC 2.0 over a WebSocket (docs/protocol.md §7.1, docs/reliability.md T11).

One connection cycle: connect → ``hello`` → ``authenticate`` (when credentials are given; the provider is called
right then, per connection) → ``subscribe`` → read pushes. Liveness: a JSON-RPC ``ping`` every
``heartbeat_interval`` seconds keeps a quiet but healthy socket talking, WebSocket ping frames catch a dead TCP
peer, and a socket that delivers no message for ``silence_timeout`` seconds (10 s) is closed. Any loss is followed
by a reconnect with exponential backoff and jitter (1 s → 30 s; the delay is drawn in ``[d/2, d]``), which
re-authenticates and re-subscribes. A rejected ``authenticate`` is permanent: ``run()`` raises ``AuthError``.

Pushes are decoded into ``schemas`` models (``decode_push``) and handed to ``on_event`` synchronously on the loop;
a push that does not match its schema is counted (``decode_errors``) and logged, never fatal. ``on_event`` must be
quick and must not block (the market feed and the private streams only copy the value and notify or queue it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from lnmarkets.credentials import CredentialsProvider
from lnmarkets.exceptions import AuthError, LNMarketsError, ResponseFormatError, TemporaryError
from lnmarkets.schemas import (
    TOPIC_MODELS,
    AuthenticateResult,
    JSONValue,
    StreamEvent,
    StreamRawEvent,
    parse_json,
    parse_model,
)
from lnmarkets.signing import stream_signature

logger = logging.getLogger(__name__)

StreamState = Literal["idle", "connecting", "live", "backoff", "stopped", "failed"]
CLIENT_NAME = "axisor"
CLIENT_VERSION = "1.0"


class StreamRpcError(TemporaryError):
    """The server answered a JSON-RPC call with an ``error`` object (the connection is then recycled)."""


class _SilenceError(TemporaryError):
    """No message for ``silence_timeout`` seconds."""


def decode_push(topic: str, data: JSONValue) -> StreamEvent:
    """The typed event for one ``subscription`` push; ``ResponseFormatError`` when the payload does not match."""
    model = TOPIC_MODELS.get(topic)
    if model is None:
        return StreamRawEvent(topic=topic, data=data)
    return parse_model(model, data, context=f"stream {topic}")


def decode_message(raw: str | bytes) -> StreamEvent | None:
    """Decode one frame; the typed event for a push, ``None`` for anything else (responses). Used by the bench."""
    message = parse_json(raw)
    if isinstance(message, dict) and message.get("method") == "subscription":
        params = message.get("params")
        if isinstance(params, dict) and isinstance(params.get("topic"), str):
            return decode_push(str(params["topic"]), params.get("data"))
    return None


class StreamClient:
    """Reconnecting Stream v1 client. ``run()`` runs until ``stop()``; call ``stop()`` on the client's loop
    (from another thread: ``loop.call_soon_threadsafe(client.stop)``).

    Counters: ``connects`` (successful subscribe cycles), ``reconnects`` (backoffs taken), ``messages``,
    ``decode_errors``; ``last_message_at`` is ``time.monotonic()`` of the last frame, ``last_loss_at`` of the last
    connection loss (or failed attempt), ``last_error`` its reason; ``permissions`` is the scope
    list of the last successful ``authenticate``. ``before_connect`` (optional) is awaited before every connection
    attempt: ``lnmarkets.private_streams`` passes its connect pacer so that many sockets open staggered.
    """

    def __init__(
        self,
        url: str,
        credentials: CredentialsProvider | None,
        topics: Iterable[str],
        on_event: Callable[[StreamEvent], None],
        *,
        heartbeat_interval: float = 5.0,
        silence_timeout: float = 10.0,
        request_timeout: float = 10.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        on_state: Callable[[StreamState], None] | None = None,
        rng: Callable[[], float] = random.random,
        before_connect: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.url = url
        self._credentials = credentials
        self.topics = tuple(topics)
        self._on_event = on_event
        self._on_state = on_state
        self.heartbeat_interval = heartbeat_interval
        self.silence_timeout = silence_timeout
        self.request_timeout = request_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._rng = rng
        self._before_connect = before_connect
        self.state: StreamState = "idle"
        self.connects = 0
        self.reconnects = 0
        self.messages = 0
        self.decode_errors = 0
        self.last_message_at: float | None = None
        self.last_error: str | None = None
        self.last_loss_at: float | None = None
        self.permissions: tuple[str, ...] = ()
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[JSONValue]] = {}
        self._ws: ClientConnection | None = None
        self._stop: asyncio.Event | None = None

    # --- lifecycle ----------------------------------------------------------------------------------------------

    def _set_state(self, state: StreamState) -> None:
        if state != self.state:
            self.state = state
            if self._on_state is not None:
                self._on_state(state)

    def backoff_delay(self, attempt: int) -> float:
        """Delay before reconnect ``attempt`` (0-based): ``min(max, initial·2^n)`` jittered into ``[d/2, d]``."""
        delay = min(self.backoff_max, self.backoff_initial * (2.0**attempt))
        return delay * (0.5 + 0.5 * self._rng())

    def stop(self) -> None:
        """Ask ``run()`` to return; closes the socket. Call on the client's event loop."""
        if self._stop is not None:
            self._stop.set()
        if self._ws is not None:
            asyncio.get_running_loop().create_task(self._ws.close())

    async def run(self) -> None:
        """Connect, keep the subscription alive, reconnect on loss, until ``stop()``. Raises ``AuthError`` if the
        exchange rejects the credentials (state ``failed``)."""
        self._stop = asyncio.Event()
        failures = 0
        while not self._stop.is_set():
            self._set_state("connecting")
            went_live = False
            try:
                went_live = await self._session()
            except AuthError as exc:
                self.last_error = str(exc)
                self._set_state("failed")
                raise
            except (OSError, TimeoutError, WebSocketException, LNMarketsError, ValueError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                if not self._stop.is_set():  # a socket closed by stop() is not lost
                    logger.warning("stream %s lost: %s", self.url, self.last_error)
            if self._stop.is_set():
                break
            self.last_loss_at = time.monotonic()
            if went_live:
                failures = 0
            delay = self.backoff_delay(failures)
            failures += 1
            self.reconnects += 1
            self._set_state("backoff")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=delay)
        self._set_state("stopped")

    async def authenticate_once(self) -> AuthenticateResult:
        """Connect, ``hello``, ``authenticate``, close (used by credential verification)."""
        async with connect(self.url, open_timeout=self.request_timeout, close_timeout=1.0, max_size=2**20) as ws:
            self._ws = ws
            reader = asyncio.create_task(self._reader(ws))
            try:
                await self._call("hello", {"clientName": CLIENT_NAME, "clientVersion": CLIENT_VERSION})
                await self._authenticate()
                return AuthenticateResult(authenticated=True, permissions=self.permissions)
            finally:
                reader.cancel()
                self._ws = None

    # --- one connection -----------------------------------------------------------------------------------------

    async def _session(self) -> bool:
        """One connection cycle; returns True if it reached ``live`` (subscribed) before it ended."""
        went_live = False
        if self._before_connect is not None:  # a shared pacer: connects staggered across many sockets
            await self._before_connect()
        async with connect(
            self.url,
            open_timeout=self.request_timeout,
            ping_interval=self.heartbeat_interval,
            ping_timeout=self.silence_timeout,
            close_timeout=1.0,
            max_size=2**20,
        ) as ws:
            self._ws = ws
            self.last_message_at = time.monotonic()
            reader = asyncio.create_task(self._reader(ws))
            try:
                await self._call("hello", {"clientName": CLIENT_NAME, "clientVersion": CLIENT_VERSION})
                if self._credentials is not None:
                    await self._authenticate()
                if self.topics:
                    await self._call("subscribe", {"topics": list(self.topics)})
                went_live = True
                self.connects += 1
                self._set_state("live")
                await self._watch(ws, reader)
            finally:
                reader.cancel()
                self._ws = None
                for future in self._pending.values():
                    if not future.done():
                        future.cancel()
                self._pending.clear()
        return went_live

    async def _authenticate(self) -> None:
        assert self._credentials is not None
        # The provider may read a database (the accounts app decrypts): never on the event loop.
        creds = await asyncio.to_thread(self._credentials)
        timestamp = time.time_ns() // 1_000_000
        nonce = secrets.token_hex(8)
        params: dict[str, JSONValue] = {
            "key": creds.key,
            "passphrase": creds.passphrase,
            "timestamp": timestamp,
            "nonce": nonce,
            "signature": stream_signature(creds.secret, timestamp, nonce),
        }
        del creds
        try:
            result = await self._call("authenticate", params)
        except StreamRpcError as exc:
            raise AuthError(f"stream authenticate rejected: {exc.message}", code=exc.code) from exc
        auth = parse_model(AuthenticateResult, result, context="stream authenticate")
        if not auth.authenticated:
            raise AuthError("stream authenticate returned authenticated=false", code="not_authenticated")
        self.permissions = auth.permissions

    async def _call(self, method: str, params: dict[str, JSONValue] | None = None) -> JSONValue:
        """Send one JSON-RPC request and wait for its result (``request_timeout``)."""
        ws = self._ws
        if ws is None:
            raise TemporaryError("stream not connected", code="not_connected")
        request_id = str(next(self._ids))
        message: dict[str, JSONValue] = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params:
            message["params"] = params
        future: asyncio.Future[JSONValue] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await ws.send(json.dumps(message, separators=(",", ":")))
            return await asyncio.wait_for(future, timeout=self.request_timeout)
        finally:
            self._pending.pop(request_id, None)

    async def _watch(self, ws: ClientConnection, reader: asyncio.Task[None]) -> None:
        """Heartbeat and silence detection until the reader ends or ``stop()``."""
        assert self._stop is not None
        last_ping = time.monotonic()
        while not reader.done() and not self._stop.is_set():
            now = time.monotonic()
            last = self.last_message_at or now
            silence_deadline = last + self.silence_timeout
            next_ping = max(last, last_ping) + self.heartbeat_interval
            wake = min(silence_deadline, next_ping)
            await asyncio.wait({reader}, timeout=max(wake - now, 0.01))
            now = time.monotonic()
            if reader.done():
                break
            if now >= (self.last_message_at or now) + self.silence_timeout:
                await ws.close(code=4000, reason="silent")
                raise _SilenceError(f"no message for {self.silence_timeout:.1f}s", code="silent")
            if now >= next_ping:
                last_ping = now
                await self._send_heartbeat(ws)
        if reader.done() and not reader.cancelled():
            reader.result()

    async def _send_heartbeat(self, ws: ClientConnection) -> None:
        request_id = f"hb{next(self._ids)}"
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "ping"}, separators=(",", ":")))

    async def _reader(self, ws: ClientConnection) -> None:
        async for raw in ws:
            self.last_message_at = time.monotonic()
            self.messages += 1
            self._handle(raw)

    def _handle(self, raw: str | bytes) -> None:
        try:
            message = parse_json(raw)
        except ValueError:
            self.decode_errors += 1
            logger.warning("stream frame is not JSON (%d bytes)", len(raw))
            return
        if not isinstance(message, dict):
            self.decode_errors += 1
            return
        if message.get("method") == "subscription":
            self._handle_push(message.get("params"))
            return
        request_id = message.get("id")
        future = self._pending.get(str(request_id)) if request_id is not None else None
        if future is None or future.done():
            return
        error = message.get("error")
        if isinstance(error, dict):
            data = error.get("data")
            app_code = data.get("code") if isinstance(data, dict) else None
            text = error.get("message")
            future.set_exception(
                StreamRpcError(
                    f"stream error: {text if isinstance(text, str) else 'unknown'}",
                    code=app_code if isinstance(app_code, str) else str(error.get("code")),
                )
            )
        else:
            future.set_result(message.get("result"))

    def _handle_push(self, params: JSONValue) -> None:
        if not isinstance(params, dict) or not isinstance(params.get("topic"), str):
            self.decode_errors += 1
            return
        topic = str(params["topic"])
        try:
            event = decode_push(topic, params.get("data"))
        except ResponseFormatError as exc:
            self.decode_errors += 1
            logger.warning("stream push on %s ignored: %s", topic, exc.message)
            return
        try:
            self._on_event(event)
        except Exception:
            logger.exception("stream on_event callback failed for %s", topic)


async def stream_authenticate(
    url: str, credentials: CredentialsProvider, *, request_timeout: float = 10.0
) -> AuthenticateResult:
    """One-shot: connect, ``hello``, ``authenticate``, close; the granted permissions (§3.5, §7.1).

    Raises ``AuthError`` when the exchange rejects the credentials; ``TemporaryError``, ``OSError``,
    ``TimeoutError`` or ``WebSocketException`` when the stream cannot be reached or does not answer in time.
    """

    def ignore(_event: StreamEvent) -> None:
        return None

    client = StreamClient(url, credentials, (), ignore, request_timeout=request_timeout)
    async with asyncio.timeout(request_timeout * 2):
        return await client.authenticate_once()
