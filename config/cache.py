"""The production cache: Django's Redis cache with one Redis client (and connection pool) per process and server.

Two costs of Django's ``RedisCacheClient`` under ASGI, both found profiling a served poll (issue #14):

* Django keeps cache objects in an ``asgiref.local.Local`` that is *not* thread-critical, i.e. one per asyncio
  context: every request handled by the ASGI handler or the snapshot fast path, and every socket's consumer, gets a
  new ``RedisCache``, a new connection pool and so **a new TCP connection to Redis** (with its health check), used
  for that request alone. That was about a third of a poll's CPU in the server.
* ``get_client`` builds a new ``redis.Redis`` object for every cache call, filling a table of about 170 response
  callbacks (0.15 ms of CPU per call).

So the client of a server (its URL, pool class and options) is kept for the process: a ``redis.Redis`` object and
its pool are safe to share between threads (each command takes a connection from the pool), and redis-py's pool
drops connections inherited through a fork (a Celery child) before its first command.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

_clients: dict[tuple[str, str], Any] = {}  # (server URL, pool class and options) → redis.Redis
_lock = threading.Lock()


class ReusingRedisCacheClient(RedisCacheClient):
    """``RedisCacheClient`` whose ``get_client`` returns the process's one client for the server."""

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:  # noqa: ANN401 - redis is untyped here
        base: Any = self  # Django's private pool attributes are not in its type stubs
        server: str = base._servers[base._get_connection_pool_index(write)]
        ident = (server, repr((base._pool_class, base._client, sorted(base._pool_options.items(), key=str))))
        client = _clients.get(ident)
        if client is None:
            with _lock:
                client = _clients.get(ident)
                if client is None:
                    pool = base._pool_class.from_url(server, **base._pool_options)
                    client = _clients[ident] = base._client(connection_pool=pool)
        return client


class ReusingRedisCache(RedisCache):
    """Django's ``RedisCache`` with ``ReusingRedisCacheClient``; configured like it (``LOCATION``, ``OPTIONS``)."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient
