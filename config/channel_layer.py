"""The production channel layer: ``channels_redis`` with a bounded, *waiting* connection pool per event loop.

``channels_redis`` builds a ``redis.asyncio.ConnectionPool`` that raises ``MaxConnectionsError`` as soon as more
than its limit of commands are in flight at once: a storm of socket connects (two ``group_add`` each) or
disconnects raised it inside consumers and the handshakes failed at random (issue #14). This layer uses
``BlockingConnectionPool`` instead: at most ``max_connections`` connections to Redis per process, and a command
that finds them all busy waits for one (up to ``pool_timeout`` seconds) instead of failing. The connect path is
also bounded upstream (``realtime.admission``), so the wait stays short.

A receive cancelled in the middle of its blocking Redis read (a socket's consumer ends when its client leaves) can
surface from ``redis.asyncio`` as a ``TimeoutError`` instead of the cancellation: Channels then logs "Exception
inside application" with a traceback for an everyday disconnect. ``receive`` turns a Redis error raised while its
task is being cancelled back into the ``CancelledError`` it is.

``channels_redis``'s per-channel cleanup lock (``ChannelLock``) counts a waiter before it waits and forgets to
uncount it when the wait is cancelled (a socket closing while the process's receive waits for the previous
message's backup cleaner). The count then never returns to zero, so the ``asyncio.Lock`` is never dropped and
stays bound to the event loop it first waited on. A server process runs one loop, so there it only keeps one
small object alive; but a second loop in the same process (each async test runs its own) that waits on it fails
with "is bound to a different event loop". ``CountedChannelLock`` uncounts a cancelled wait.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels_redis.core import ChannelLock, RedisChannelLayer
from redis.asyncio import BlockingConnectionPool
from redis.exceptions import RedisError


class CountedChannelLock(ChannelLock):  # type: ignore[misc]  # channels_redis is untyped
    """``ChannelLock`` whose cancelled (or failed) waits are uncounted; see the module docstring."""

    async def acquire(self, channel: str) -> bool:
        self.wait_counts[channel] += 1
        try:
            acquired: bool = await self.locks[channel].acquire()
        except BaseException:
            self.wait_counts[channel] -= 1
            if self.wait_counts[channel] < 1:
                del self.locks[channel]
                del self.wait_counts[channel]
            raise
        return acquired


class BoundedRedisChannelLayer(RedisChannelLayer):  # type: ignore[misc]  # channels_redis is untyped
    """``RedisChannelLayer`` whose pools wait for a free connection; see the module docstring."""

    def __init__(self, *args: Any, max_connections: int = 64, pool_timeout: float = 10.0, **kwargs: Any) -> None:  # noqa: ANN401
        if max_connections < 2:
            raise ValueError("max_connections must be at least 2 (one blocking receive plus one command)")
        self.max_connections = max_connections
        self.pool_timeout = pool_timeout
        super().__init__(*args, **kwargs)
        self.receive_clean_locks = CountedChannelLock()

    def create_pool(self, index: int) -> BlockingConnectionPool:
        host = dict(self.hosts[index])
        address = host.pop("address", None)
        if address is None:
            raise ValueError("BoundedRedisChannelLayer takes hosts as redis:// URLs")
        return BlockingConnectionPool.from_url(
            address, max_connections=self.max_connections, timeout=self.pool_timeout, **host
        )

    async def receive(self, channel: str) -> dict[str, Any]:
        try:
            message: dict[str, Any] = await super().receive(channel)
        except RedisError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError from exc  # the cancellation it really is (module docstring)
            raise
        return message
