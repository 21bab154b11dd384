"""Run a simulator in a background thread (tests, the embedded default): ``start_in_thread(config)``."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from types import TracebackType
from typing import Any, TypeVar

from lnmarkets.simulator.client import ControlClient
from lnmarkets.simulator.config import SimulatorConfig
from lnmarkets.simulator.exchange import Exchange
from lnmarkets.simulator.market import Clock
from lnmarkets.simulator.server import SimServer

T = TypeVar("T")
START_TIMEOUT = 10.0
CALL_TIMEOUT = 10.0


class RunningSimulator:
    """A simulator serving on its own thread and event loop. Use ``call`` to touch the exchange."""

    def __init__(self, server: SimServer, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
        self.server = server
        self.loop = loop
        self.thread = thread
        host = server.config.host
        self.base_url = f"http://{host}:{server.port}"
        self.rest_url = self.base_url + "/v3"
        self.stream_url = f"ws://{host}:{server.port}/v1"
        self.control = ControlClient(self.base_url, server.config.control_token or "")
        self._stopped = False

    @property
    def exchange(self) -> Exchange:
        return self.server.exchange

    @property
    def port(self) -> int:
        return self.server.port

    def call(self, fn: Callable[[Exchange], T], timeout: float = CALL_TIMEOUT) -> T:
        """Run ``fn(exchange)`` on the simulator's loop thread and return its result."""

        async def run() -> T:
            return fn(self.server.exchange)

        return self.run(run(), timeout)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = CALL_TIMEOUT) -> T:
        """Run a coroutine on the simulator's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.control.close()
        try:
            self.run(self.server.stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=START_TIMEOUT)

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_in_thread(config: SimulatorConfig | None = None, clock: Clock | None = None) -> RunningSimulator:
    """Start a simulator on a daemon thread; returns once it listens (``port=0`` picks a free port)."""
    config = config or SimulatorConfig()
    loop = asyncio.new_event_loop()
    ready: Future[SimServer] = Future()

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            server = SimServer(config, clock)
            loop.run_until_complete(server.start())
        except BaseException as exc:  # noqa: BLE001 - handed to the starting thread, which re-raises it
            ready.set_exception(exc)
            loop.close()
            return
        ready.set_result(server)
        try:
            loop.run_forever()
        finally:
            loop.close()

    thread = threading.Thread(target=main, name="lnm-simulator", daemon=True)
    thread.start()
    server = ready.result(START_TIMEOUT)
    return RunningSimulator(server, loop, thread)
