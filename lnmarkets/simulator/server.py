"""The aiohttp application (REST ``/v3``, Stream ``/v1``, control ``/_sim``) on one port, and its tick loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from aiohttp import web

from lnmarkets.simulator.config import SimulatorConfig
from lnmarkets.simulator.context import SimContext
from lnmarkets.simulator.control import ControlFront
from lnmarkets.simulator.exchange import Exchange
from lnmarkets.simulator.market import Clock
from lnmarkets.simulator.persist import load_state, save_state
from lnmarkets.simulator.rest import RestFront, not_found

logger = logging.getLogger(__name__)
SAVE_EVERY = 5.0


def build_app(ctx: SimContext) -> web.Application:
    app = web.Application(client_max_size=256 * 1024)
    rest = RestFront(ctx)
    control = ControlFront(ctx)
    app.router.add_route("GET", "/v1", ctx.hub.handle)
    app.router.add_route("*", "/_sim/{tail:.*}", control.handle)
    app.router.add_route("*", "/v3", rest.handle)
    app.router.add_route("*", "/v3/{tail:.*}", rest.handle)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


class SimServer:
    """One simulator: ``await start()``, then ``port``; ``await stop()``."""

    def __init__(self, config: SimulatorConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.exchange = Exchange(config, clock)
        if config.state_file:
            load_state(self.exchange, config.state_file)
        self.ctx = SimContext(config, self.exchange)
        self.app = build_app(self.ctx)
        self.runner: web.AppRunner | None = None
        self.port = config.port
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self.runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.config.host, self.config.port))
        self.port = sock.getsockname()[1]
        site = web.SockSite(self.runner, sock)
        await site.start()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._tick_loop()))
        if self.config.state_file:
            self._tasks.append(loop.create_task(self._save_loop()))
        logger.info("LN Markets simulator on http://%s:%s", self.config.host, self.port)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for sock in list(self.ctx.hub.sockets):
            await sock.ws.close(code=1001, message=b"server shutdown")
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        if self.config.state_file:
            save_state(self.exchange, self.config.state_file)

    async def _tick_loop(self) -> None:
        interval = max(self.config.tick_interval, 0.001)
        while True:
            await asyncio.sleep(interval)
            self.ctx.faults.prune()
            if not self.ctx.frozen:
                try:
                    self.exchange.tick()
                except Exception:
                    logger.exception("simulator tick failed")

    async def _save_loop(self) -> None:
        assert self.config.state_file
        while True:
            await asyncio.sleep(SAVE_EVERY)
            save_state(self.exchange, self.config.state_file)

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()
