"""Private trade streams of many accounts: one authenticated Stream v1 socket per account, all on one event loop in
one daemon thread (docs/protocol.md §7.1; docs/exchange-events.md).

``PrivateStreams`` knows no database: the caller says which accounts it wants (``sync``: account id → stream URL,
credentials provider and a version that changes when the credentials change) and receives, on the streams' thread:

* ``on_event(account_id, event)`` for every ``futures/inverse/btc_usd/isolated/trades`` push, and
* ``on_status(account_id, status)`` for every change of an account's socket state.

Both callbacks must be quick and must not block (the manager in ``automations.stream_manager`` only queues them).

Connects are staggered: every connection attempt of every socket (first connect and reconnect alike) waits for the
shared pacer, which lets at most ``connects_per_second`` attempts through (the exchange does not document a
connection cap; a burst of hundreds of handshakes from one address is what a cap would refuse). Each socket then
reconnects with the stream client's exponential backoff and jitter (1 s → 30 s, drawn in ``[d/2, d]``). A rejected
``authenticate`` stops that account's socket (status ``failed``) until its version changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from lnmarkets.credentials import CredentialsProvider
from lnmarkets.exceptions import LNMarketsError
from lnmarkets.schemas import TOPIC_ISOLATED_TRADES, StreamEvent, StreamTradeEvent
from lnmarkets.stream import StreamClient, StreamState

logger = logging.getLogger(__name__)

TradeEventHandler = Callable[[int, StreamTradeEvent], None]
StatusHandler = Callable[[int, StreamState], None]


@dataclass(frozen=True, slots=True)
class StreamTarget:
    """What one account's socket needs: the stream URL, the credentials provider (called at each authenticate,
    never stored; not compared) and a ``version`` (e.g. a digest of the stored key) that restarts the socket when it
    changes."""

    url: str
    credentials: CredentialsProvider = field(compare=False)
    version: str = ""


class ConnectPacer:
    """At most ``rate`` connection attempts per second across every socket of the loop (spaced, not bursted)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass(slots=True)
class _Socket:
    target: StreamTarget
    client: StreamClient
    task: asyncio.Task[None]


class PrivateStreams:
    """See the module docstring. ``start()`` runs the loop thread; ``sync()`` and ``stop()`` are thread-safe."""

    def __init__(
        self,
        on_event: TradeEventHandler,
        on_status: StatusHandler,
        *,
        connects_per_second: float = 20.0,
        heartbeat_interval: float = 5.0,
        silence_timeout: float = 15.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
    ) -> None:
        self._on_event = on_event
        self._on_status = on_status
        self.connects_per_second = connects_per_second
        self._options = {
            "heartbeat_interval": heartbeat_interval,
            "silence_timeout": silence_timeout,
            "backoff_initial": backoff_initial,
            "backoff_max": backoff_max,
        }
        self._sockets: dict[int, _Socket] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pacer: ConnectPacer | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None

    # --- lifecycle (any thread) ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the loop thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._ready.clear()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="private-streams", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=5.0):
            raise RuntimeError("the private streams' loop did not start")

    def stop(self, timeout: float = 10.0) -> None:
        """Close every socket (status ``stopped``) and end the thread."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def sync(self, wanted: Mapping[int, StreamTarget], timeout: float = 10.0) -> None:
        """Open a socket for every account in ``wanted`` that has none (or whose target changed) and close the
        sockets of accounts no longer wanted. Returns once the change is scheduled (connects are paced)."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("PrivateStreams.sync() before start()")
        future = asyncio.run_coroutine_threadsafe(self._sync(dict(wanted)), loop)
        future.result(timeout=timeout)

    # --- reading (any thread; values are plain attributes written on the loop) ----------------------------------

    def states(self) -> dict[int, StreamState]:
        """Each account's socket state (``connecting``, ``live``, ``backoff``, ``failed``, ``stopped``)."""
        return {account_id: sock.client.state for account_id, sock in list(self._sockets.items())}

    def live_count(self) -> int:
        return sum(1 for state in self.states().values() if state == "live")

    def client(self, account_id: int) -> StreamClient | None:
        sock = self._sockets.get(account_id)
        return sock.client if sock is not None else None

    # --- the loop -----------------------------------------------------------------------------------------------

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._pacer = ConnectPacer(self.connects_per_second)
        self._stopping = asyncio.Event()
        self._ready.set()
        await self._stopping.wait()
        await self._sync({})

    async def _sync(self, wanted: dict[int, StreamTarget]) -> None:
        gone = [a for a, sock in self._sockets.items() if wanted.get(a) != sock.target]
        closing = [self._close(account_id) for account_id in gone]
        await asyncio.gather(*closing, return_exceptions=True)
        for account_id, target in wanted.items():
            if account_id not in self._sockets:
                self._open(account_id, target)

    def _open(self, account_id: int, target: StreamTarget) -> None:
        assert self._pacer is not None

        def on_event(event: StreamEvent) -> None:
            if isinstance(event, StreamTradeEvent):
                self._on_event(account_id, event)

        def on_state(state: StreamState) -> None:
            self._on_status(account_id, state)

        client = StreamClient(
            target.url,
            target.credentials,
            (TOPIC_ISOLATED_TRADES,),
            on_event,
            on_state=on_state,
            before_connect=self._pacer.wait,
            heartbeat_interval=self._options["heartbeat_interval"],
            silence_timeout=self._options["silence_timeout"],
            backoff_initial=self._options["backoff_initial"],
            backoff_max=self._options["backoff_max"],
        )
        task = asyncio.get_running_loop().create_task(self._run(account_id, client), name=f"private-{account_id}")
        self._sockets[account_id] = _Socket(target, client, task)

    async def _run(self, account_id: int, client: StreamClient) -> None:
        try:
            await client.run()
        except LNMarketsError as exc:  # AuthError: rejected credentials; state is "failed"
            logger.warning("account %s: private stream stopped: %s", account_id, type(exc).__name__)

    async def _close(self, account_id: int) -> None:
        sock = self._sockets.pop(account_id)
        sock.client.stop()
        try:
            await asyncio.wait_for(asyncio.shield(sock.task), timeout=2.0)
        except (TimeoutError, asyncio.CancelledError):
            sock.task.cancel()
        if sock.client.state != "stopped":
            self._on_status(account_id, "stopped")
