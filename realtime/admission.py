"""Admission control for one server process: bounded work in flight, a bounded wait, and deliberate shedding.

Why: under Daphne every HTTP request runs in a thread of its own and every WebSocket handshake reads the session
and the user before the application sees it. Left unbounded, a storm of connects or polls queues thousands of
threads on a database pool of ten (``database pool exhausted`` after the pool timeout) and holds handshakes past
Daphne's connect timeout (the browser sees a broken handshake). Bounded, the same storm is served at the rate the
process can sustain and the rest is told, on purpose, to come back later:

* ``Gate``: at most ``concurrency`` holders at once; a caller waits at most ``max_wait_s`` for a slot and at most
  ``backlog`` callers wait at once. A caller that cannot get in is *shed* (``Shed``) with a retry delay that grows
  with the backlog; nothing else fails.
* ``AdmissionMiddleware`` (ASGI, in ``config.asgi``): every HTTP request holds a slot of the process's HTTP gate
  until its response is complete (a shed one gets ``503`` with ``Retry-After``, JSON under ``/realtime/api/``);
  every WebSocket handshake holds a slot of the handshake gate from its arrival (before the session lookup) until
  the application accepts or closes it (a shed one is accepted, told ``overloaded`` with ``retry_after_ms`` and
  closed with ``CLOSE_OVERLOADED`` 4429: ``dashboard.js`` waits that long plus jitter before it tries again).

Gates are per event loop (Daphne runs one; tests run one per test), like ``realtime.hub``. No lock expiry or
timing is part of any correctness argument: a shed caller simply has not been served, and says so.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone

from config.metrics import SHED_TOTAL

logger = logging.getLogger(__name__)

CLOSE_OVERLOADED = 4429  # the application range: "too many connects now, try again after retry_after_ms"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class Shed(Exception):  # noqa: N818 - a decision, not a failure
    """The gate is saturated: come back after ``retry_after_ms``."""

    def __init__(self, retry_after_ms: int) -> None:
        super().__init__(f"saturated; retry after {retry_after_ms} ms")
        self.retry_after_ms = retry_after_ms


@dataclass(frozen=True)
class GateLimits:
    concurrency: int
    backlog: int
    max_wait_s: float
    retry_after_ms: int  # the hint at an empty backlog; it doubles at a full one

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.backlog < 0 or self.max_wait_s < 0 or self.retry_after_ms < 0:
            raise ValueError(f"invalid gate limits: {self}")


class Gate:
    """See the module docstring. Not thread-safe: used on one event loop."""

    def __init__(self, limits: GateLimits) -> None:
        self.limits = limits
        self.active = 0
        self.waiting = 0
        self.admitted = 0
        self.shed = 0
        self._free = asyncio.Semaphore(limits.concurrency)

    def retry_after_ms(self) -> int:
        """The delay to suggest now: the base hint, up to twice that when the backlog is full."""
        fill = min(1.0, self.waiting / self.limits.backlog) if self.limits.backlog else 1.0
        return int(self.limits.retry_after_ms * (1.0 + fill))

    def _refuse(self) -> Shed:
        self.shed += 1
        return Shed(self.retry_after_ms())

    async def acquire(self) -> None:
        """Take a slot, or raise ``Shed`` (backlog full, or no slot within ``max_wait_s``)."""
        if self.active < self.limits.concurrency and self.waiting == 0:
            await self._free.acquire()  # free now: never waits
        else:
            if self.waiting >= self.limits.backlog:
                raise self._refuse()
            self.waiting += 1
            try:
                await asyncio.wait_for(self._free.acquire(), timeout=self.limits.max_wait_s)
            except TimeoutError:
                raise self._refuse() from None
            finally:
                self.waiting -= 1
        self.active += 1
        self.admitted += 1

    def release(self) -> None:
        self.active -= 1
        self._free.release()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()


def _limits(prefix: str) -> GateLimits:
    return GateLimits(
        concurrency=int(getattr(settings, f"{prefix}_CONCURRENCY")),
        backlog=int(getattr(settings, f"{prefix}_BACKLOG")),
        max_wait_s=float(getattr(settings, f"{prefix}_MAX_WAIT_S")),
        retry_after_ms=int(getattr(settings, f"{prefix}_RETRY_AFTER_MS")),
    )


_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Gate]] = weakref.WeakKeyDictionary()


def gate(name: str) -> Gate:
    """The running loop's gate ``name`` (``"HTTP"``, ``"WS_HANDSHAKE"``, ``"WS_SNAPSHOT"``), limits from the
    settings ``<name>_CONCURRENCY``, ``_BACKLOG``, ``_MAX_WAIT_S``, ``_RETRY_AFTER_MS``."""
    gates = _gates.setdefault(asyncio.get_running_loop(), {})
    found = gates.get(name)
    if found is None:
        found = gates[name] = Gate(_limits(name))
    return found


def overloaded_frame(retry_after_ms: int) -> str:
    """The one message a shed socket gets before its close (the dashboard protocol's ``error`` shape)."""
    return json.dumps(
        {
            "type": "error",
            "seq": 1,
            "ts": timezone.now().isoformat(),
            "data": {
                "code": "overloaded",
                "message": "The server is busy; reconnecting shortly.",
                "retry_after_ms": retry_after_ms,
            },
        }
    )


async def shed_socket(receive: Receive, send: Send, retry_after_ms: int) -> None:
    """Accept the handshake (a refused one reaches the browser as a bare 1006), say why, close with 4429."""
    message = await receive()
    if message.get("type") != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": overloaded_frame(retry_after_ms)})
    await send({"type": "websocket.close", "code": CLOSE_OVERLOADED})


async def shed_http(scope: Scope, send: Send, retry_after_ms: int) -> None:
    retry_s = max(1, -(-retry_after_ms // 1000))
    if str(scope.get("path", "")).startswith("/realtime/api/"):
        body = json.dumps({"error": "busy", "retry_after": retry_s}).encode()
        content_type = b"application/json"
    else:
        body, content_type = b"The server is busy; try again in a few seconds.", b"text/plain; charset=utf-8"
    headers = [
        (b"content-type", content_type),
        (b"retry-after", str(retry_s).encode()),
        (b"cache-control", b"no-store"),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class AdmissionMiddleware:
    """ASGI middleware: the HTTP gate around each request, the handshake gate around each WebSocket handshake."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    @staticmethod
    async def _admitted(name: str, kind: str, shed: Callable[[int], Awaitable[None]]) -> Gate | None:
        """A slot of the gate ``name``, or ``None`` after answering the caller with ``shed`` (counted as ``kind``)."""
        entry = gate(name)
        try:
            await entry.acquire()
        except Shed as refused:
            SHED_TOTAL.labels(kind=kind).inc()
            await shed(refused.retry_after_ms)
            return None
        return entry

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        http = await self._admitted("HTTP", "http", lambda ms: shed_http(scope, send, ms))
        if http is None:
            return
        try:
            await self.app(scope, receive, send)
        finally:
            http.release()

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        handshake = await self._admitted("WS_HANDSHAKE", "websocket", lambda ms: shed_socket(receive, send, ms))
        if handshake is None:
            return
        held = True

        def done() -> None:
            nonlocal held
            if held:
                held = False
                handshake.release()

        async def watching_send(message: Message) -> None:
            if message.get("type") in ("websocket.accept", "websocket.close", "websocket.send"):
                done()  # the handshake is over: accepted (a send implies it) or refused
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        finally:
            done()
